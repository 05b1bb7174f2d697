"""Issue 5 with real processes: a qcluster draining, a worker killed with SIGKILL
mid-batch, and two workers draining 1,000 rows at once."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.core.mail import send_mail
from django.db import transaction
from django_q.conf import Conf
from django_q.models import Task
from django_q.tasks import async_task

from tests import smtpservers
from tests.utils import ROOT, configure, numbered_envelopes, submit, worker_env
from wagtail_icarus_smtp import outbox, queue
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

pytestmark = [pytest.mark.qcluster, pytest.mark.django_db(transaction=True)]


def start(args, env, stdin=None):
    """A process in its own group, so SIGKILL reaches the cluster's worker children."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(process, sig=signal.SIGTERM):
    """SIGTERM to the cluster (it stops its workers); SIGKILL to the whole group."""
    if process.poll() is None:
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0]


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        stop(process, signal.SIGKILL)


def wait_until(condition, process, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"worker exited:\n{process.communicate()[0]}")
        if time.monotonic() > deadline:
            output = stop(process) if process is not None else ""
            pytest.fail(f"timed out; worker output:\n{output}")
        time.sleep(0.1)


def all_sent():
    return not OutboxMessage.objects.exclude(status="sent").exists()


@pytest.fixture
def slow_data(monkeypatch):
    """Every DATA takes ``seconds`` on the server (so a batch can be cut in the middle)."""
    original = smtpservers._Handler.handle_DATA

    def install(seconds):
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(seconds)
            return await original(self, server, session, envelope)

        monkeypatch.setattr(smtpservers._Handler, "handle_DATA", handle_DATA)

    return install


def hold(count):
    outbox.accept(numbered_envelopes(count), held=True)


def test_a_real_qcluster_drains_held_mail_when_sending_is_switched_on(
    server, ca, monkeypatch, processes
):
    monkeypatch.setattr(Conf, "SYNC", False)
    configure(server, enabled=None)
    hold(20)
    cluster = start(["-m", "django", "qcluster"], worker_env(server, ca))
    processes.append(cluster)

    submit(port=str(server.port))  # switched on: resume() queues a drain task

    wait_until(all_sent, cluster)
    ids = Counter(m.message["Message-ID"] for m in server.wait_for_messages(20))
    assert ids == Counter({f"<m{i}@test>": 1 for i in range(20)})
    # The worker's monitor saves the task row just after the task itself finished.
    wait_until(Task.objects.filter(func=queue.DELIVER, success=True).exists, cluster)
    assert Task.objects.get(func=queue.DELIVER).result["sent"] == 20
    stop(cluster)


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_at_most_one(
    server, ca, monkeypatch, processes, slow_data
):
    monkeypatch.setattr(Conf, "SYNC", False)
    configure(server, enabled=None)
    hold(30)
    slow_data(0.1)
    env = worker_env(server, ca, ICARUS_TEST_OUTBOX_LEASE="3")
    cluster = start(["-m", "django", "qcluster"], env)
    processes.append(cluster)
    submit(port=str(server.port))

    wait_until(lambda: len(server.messages) >= 5, cluster)
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.communicate(timeout=30)
    assert OutboxMessage.objects.filter(status="sending").exists()  # cut mid-batch

    time.sleep(3.5)  # the dead worker's lease runs out
    restarted = start(["-m", "django", "qcluster"], env)
    processes.append(restarted)
    async_task(queue.DELIVER, group=queue.GROUP)  # what the retry schedule would do

    wait_until(all_sent, restarted)
    received = Counter(m.message["Message-ID"] for m in server.messages)
    assert set(received) == {f"<m{i}@test>" for i in range(30)}  # nothing lost
    assert sum(received.values()) - 30 <= 1  # at most one duplicate, same Message-ID
    stop(restarted)


def test_two_workers_draining_1000_rows_send_each_exactly_once(server, ca, processes, slow_data):
    configure(server, enabled=None)
    hold(1000)
    OutboxMessage.objects.update(status="queued")
    SmtpSettings.objects.update(enabled=True)  # no resume(): the workers do the draining
    slow_data(0.002)  # a batch lasts long enough for the other worker to claim the next one
    env = worker_env(server, ca, ICARUS_TEST_OUTBOX_LEASE="120", ICARUS_TEST_OUTBOX_BATCH="50")
    # Both workers start draining together: one that is still importing Django
    # must not find the table already empty.
    script = (
        "import sys, django; django.setup(); "
        "from wagtail_icarus_smtp import outbox; "
        "print('READY', flush=True); sys.stdin.readline(); "
        "print('SENT', outbox.drain(max_batches=100).sent)"
    )
    workers = [start(["-c", script], env, stdin=subprocess.PIPE) for _ in range(2)]
    processes.extend(workers)
    for worker in workers:
        wait_for_line(worker, "READY")
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [stop_when_done(worker) for worker in workers]

    counts = [int(out.rsplit("SENT", 1)[1].split()[0]) for out in outputs]
    assert sum(counts) == 1000, outputs
    assert min(counts) > 0, counts  # both really worked
    received = Counter(m.message["Message-ID"] for m in server.wait_for_messages(1000))
    assert len(received) == 1000
    assert set(received.values()) == {1}
    assert all_sent()


def wait_for_line(process, text):
    """Read the process's output up to a line starting with ``text``."""
    seen = []
    for line in process.stdout:
        if line.startswith(text):
            return
        seen.append(line)
    pytest.fail(f"the worker ended before {text!r}:\n{''.join(seen)}")


def stop_when_done(process):
    try:
        output = process.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        output = stop(process, signal.SIGKILL)
    assert process.returncode == 0, output
    return output


def test_a_booking_is_handed_over_and_a_real_qcluster_sends_it(
    server, ca, monkeypatch, processes, settings
):
    """The default hand-over with a real worker: the request stores the mail and only
    wakes the worker; the worker (ORM broker, as the README configures it) sends it."""
    monkeypatch.setattr(Conf, "SYNC", False)
    configure(server)
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    cluster = start(["-m", "django", "qcluster"], worker_env(server, ca))
    processes.append(cluster)
    sessions = server.sessions

    with transaction.atomic():  # a booking: the mail is part of its transaction
        assert send_mail("Buchung bestätigt", "Bis Samstag!", None, ["kunde@example.org"]) == 1
    assert server.sessions == sessions  # the request itself opened no connection

    wait_until(all_sent, cluster)
    [received] = server.wait_for_messages(1)
    assert received.message["Subject"] == "Buchung bestätigt"
    stop(cluster)
