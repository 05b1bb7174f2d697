"""One peer of the side-by-side bench, in a process of its own, on a database of its own.

    python bench/peer.py ACTION [--count N] [--attachment-kb K]

``BENCH_PEER`` (see ``bench/settings.py``) picks the peer. Each action prints one JSON
line with what it measured; ``bench_send.py`` runs them and prints the table.

* ``setup``     migrate the peer's database (ours: a live mailbox on the bench server)
* ``handover``  ``with transaction.atomic(): send_mail(...)`` ``--count`` times
* ``handover-idle``  the same, each time with an idle worker to wake (ours)
* ``store``     the same with sending switched off (ours; the queues always only store)
* ``drain``     queue ``--count`` messages (not timed), then one worker pass sends them
* ``bookings``  the peer's worker runs; ``--count`` bookings, each its own transaction,
                timed until the server has received every message
* ``on-the-wire``  the peer's worker runs and is idle; ``--count`` bookings one at a time,
                ``WIRE_PAUSE`` apart, each timed from its commit until the server has it
* ``fill``      queue ``--count`` messages with an attachment (``bench/memory.py``)
* ``drain-rss`` send what is queued; report the process's peak resident memory

Each way goes through the peer's own normal path: ours through ``EMAIL_BACKEND`` and a
django-q2 worker (``tasks.deliver_outbox``, as ``qcluster`` runs it); post_office
through its backend and ``send_queued_mail``; django-mailer through its backend and
``send_mail`` / ``runmailer``; Django's stock backend sends in the request.
"""

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: How often a booking process looks whether its mail has arrived.
POLL = 0.005
#: How long the bench waits for mail to arrive before it gives up on a round.
ARRIVAL_TIMEOUT = 600
#: Seconds between two bookings of ``on-the-wire``: the worker is idle at each one.
WIRE_PAUSE = 1.5


def server_count():
    """The number of messages the bench server has received so far."""
    port = int(os.environ["BENCH_CONTROL_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        return int(conn.makefile().readline())


def server_arrivals(count):
    """When the last ``count`` messages arrived at the bench server (``time.time()``)."""
    port = int(os.environ["BENCH_CONTROL_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile()
        reader.readline()  # the count
        conn.sendall(f"times {count}\n".encode())
        return [float(value) for value in reader.readline().split()]


def wait_for_server(target, timeout=ARRIVAL_TIMEOUT, worker=None):
    deadline = time.monotonic() + timeout
    while (received := server_count()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server has {received} of {target} messages")
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the worker ended (exit {worker.returncode})")
        time.sleep(POLL)


class Statements:
    """Counts the SQL statements the process runs within ``counting()``: on this
    thread's connection and on every connection opened meanwhile (a worker's further
    connections are threads, each with a database connection of its own)."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, execute, sql, params, many, context):
        with self._lock:
            self.count += 1
        return execute(sql, params, many, context)

    @contextlib.contextmanager
    def counting(self):
        from django.db import connection
        from django.db.backends.signals import connection_created

        def opened(sender, connection, **kwargs):
            if self not in connection.execute_wrappers:
                connection.execute_wrappers.append(self)

        connection_created.connect(opened, weak=False)
        try:
            with connection.execute_wrapper(self):
                yield self
        finally:
            connection_created.disconnect(opened)


def booking(index):
    """What a site does when a customer books: one transaction, one confirmation."""
    from django.core.mail import send_mail
    from django.db import transaction

    with transaction.atomic():
        send_mail(
            f"Ihre Buchung Nr. {index}",
            "Danke für Ihre Buchung! Wir sehen uns am Sprungplatz.",
            None,
            [f"kunde{index}@example.com"],
        )


def messages(count, attachment=b""):
    from django.core.mail import EmailMessage

    for index in range(count):
        message = EmailMessage(
            f"Rechnung {index}", "Ihre Rechnung im Anhang.", None, [f"k{index}@example.com"]
        )
        if attachment:
            message.attach(f"rechnung-{index}.pdf", attachment, "application/pdf")
        yield message


def queue_messages(count, attachment=b"", chunk=100):
    """Hand ``count`` messages to the peer's backend, ``chunk`` per call."""
    from django.core.mail import get_connection

    backend = get_connection()
    batch = []
    for message in messages(count, attachment):
        batch.append(message)
        if len(batch) == chunk:
            backend.send_messages(batch)
            batch = []
    if batch:
        backend.send_messages(batch)


# -- the peers ----------------------------------------------------------------------


class Peer:
    """What every peer can do; a peer without a queue sends in the request."""

    queues = True

    def setup(self):
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def reset(self, sending=True):
        """Forget what earlier measurements left (rows, pending tasks)."""

    def taken_over(self):
        """Before ``drain``: forget what asked for the pass the bench runs now."""

    def drain(self):
        """One pass of the peer's worker: send everything due."""
        raise NotImplementedError

    def worker(self):
        """argv of the peer's long-running worker process."""
        raise NotImplementedError


class Stock(Peer):
    queues = False

    def setup(self):
        pass  # no database: Django's SMTP backend sends in the request


class Ours(Peer):
    def setup(self):
        super().setup()
        from django.conf import settings

        from wagtail_icarus_smtp.models import SmtpLiveConfiguration, SmtpSettings
        from wagtail_icarus_smtp.smtp import crypto

        user, password = settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD
        smtp_settings = SmtpSettings.load()
        ciphertext = crypto.encrypt(password)
        values = {"email": user, "_password_encrypted": ciphertext, "host": "localhost"}
        SmtpSettings.objects.filter(pk=smtp_settings.pk).update(
            **values, port=settings.EMAIL_PORT, enabled=True
        )
        SmtpLiveConfiguration.objects.create(
            settings=smtp_settings, **values, port=settings.EMAIL_PORT, version=0
        )

    def reset(self, sending=True):
        from django.conf import settings
        from django_q.models import OrmQ, Schedule, Task

        from wagtail_icarus_smtp.models import (
            DeliveryWakeup,
            OutboxMessage,
            SmtpLiveConfiguration,
            SmtpSettings,
        )

        OutboxMessage.objects.all().delete()
        DeliveryWakeup.objects.all().delete()
        OrmQ.objects.all().delete()
        Task.objects.all().delete()
        Schedule.objects.all().delete()
        # The same mailbox through the bench's server or its round-trip proxy.
        SmtpLiveConfiguration.objects.update(port=settings.EMAIL_PORT)
        SmtpSettings.objects.update(port=settings.EMAIL_PORT, enabled=sending)

    def worker_idle(self):
        """The worker has picked up the last wake-up: the next hand-over wakes it."""
        from wagtail_icarus_smtp.models import DeliveryWakeup

        DeliveryWakeup.objects.update(requested_at=None)

    def taken_over(self):
        """The drain task the hand-overs queued is the one the bench runs now."""
        from django_q.models import OrmQ

        OrmQ.objects.all().delete()

    def drain(self):
        """One drain task; another only when it queued one (it stopped at its limit
        with mail left), as ``qcluster`` would run it."""
        from django.test import override_settings
        from django_q.models import OrmQ

        from wagtail_icarus_smtp import tasks

        # One pass, as the queues' commands make it: the drain ends when the outbox is
        # empty instead of staying for more mail (ICARUS_SMTP_DRAIN_LINGER).
        with override_settings(ICARUS_SMTP_DRAIN_LINGER=0):
            while tasks.deliver_outbox()["sent"] and OrmQ.objects.exists():
                OrmQ.objects.all().delete()

    def worker(self):
        return [sys.executable, "-m", "django", "qcluster"]


class PostOffice(Peer):
    def reset(self, sending=True):
        from post_office.models import Email

        Email.objects.all().delete()

    def drain(self):
        from django.core.management import call_command

        call_command("send_queued_mail")

    def worker(self):
        # post_office has no daemon of its own (cron runs send_queued_mail, or Celery):
        # its command in a loop, looking for mail as often as django-q2 does (0.2 s).
        return [sys.executable, __file__, "post-office-loop"]


class Mailer(Peer):
    def reset(self, sending=True):
        import lockfile
        from django.conf import settings
        from mailer.models import Message, MessageLog

        Message.objects.all().delete()
        MessageLog.objects.all().delete()
        # No worker runs now: a lock left by an ended runmailer would make send_all quit.
        lockfile.FileLock(settings.MAILER_LOCK_PATH).break_lock()

    def drain(self):
        from django.core.management import call_command

        call_command("send_mail")

    def worker(self):
        return [sys.executable, "-m", "django", "runmailer"]


PEERS = {"ours": Ours, "stock": Stock, "post_office": PostOffice, "mailer": Mailer}


# -- the measurements -----------------------------------------------------------------


def handover(peer, count, sending=True, idle=False):
    """``count`` hand-overs, each timed alone (with its commit and what runs after it).

    No worker runs: ours wakes it with the first hand-over and sees that wake-up pending
    in the others (a burst of bookings). ``idle``: before each hand-over (not timed)
    the worker has taken the last wake-up, so each one queues a django-q2 task."""

    peer.reset(sending=sending)
    for index in range(min(count, 20)):  # warm up: imports, caches, TLS context
        booking(index)
    peer.reset(sending=sending)
    before = server_count()
    statements = Statements()
    seconds = 0.0
    for index in range(count):
        if idle:
            peer.worker_idle()
        started = time.perf_counter()
        with statements.counting():
            booking(index)
        seconds += time.perf_counter() - started
    return {
        "seconds": seconds,
        "messages": count,
        "statements": statements.count,
        "smtp_in_request": server_count() - before,
    }


def drain(peer, count):
    """Queue ``count`` messages (not timed); one worker pass sends them all."""

    peer.reset()
    queue_messages(5)  # warm up the worker: imports, TLS context
    peer.taken_over()
    peer.drain()
    peer.reset()
    queue_messages(count)
    peer.taken_over()
    before = server_count()
    statements = Statements()
    started = time.perf_counter()
    with statements.counting():
        peer.drain()
    seconds = time.perf_counter() - started
    sent = server_count() - before
    assert sent == count, f"{sent} of {count} messages arrived"
    return {"seconds": seconds, "messages": count, "statements": statements.count}


@contextlib.contextmanager
def running_worker(peer):
    """The peer's worker runs (none for stock), up and warm: a first booking arrived.
    Yields the worker process and the server's count after that booking."""
    peer.reset()
    worker = None
    if peer.queues:
        worker = subprocess.Popen(peer.worker(), start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        target = server_count() + 1
        booking(0)
        wait_for_server(target, timeout=120, worker=worker)
        yield worker, target
    finally:
        if worker is not None:
            stop(worker)


def bookings(peer, count):
    """The peer's worker runs; ``count`` bookings one after another; timed until the
    server has every message."""
    with running_worker(peer) as (worker, received):
        started = time.perf_counter()
        for index in range(1, count + 1):
            booking(index)
        booked = time.perf_counter() - started
        wait_for_server(received + count, worker=worker)
        seconds = time.perf_counter() - started
    # ``booked``: the bookings alone; the rest is the wait for the last messages.
    return {"seconds": seconds, "messages": count, "booked": booked}


def on_the_wire(peer, count):
    """The peer's worker runs; ``count`` bookings, each when the worker is idle again
    (``WIRE_PAUSE`` after the last one arrived), each timed from its commit (the first
    ``on_commit`` hook) until the server has it. ``seconds``: the median."""
    from django.db import transaction

    commits = []
    with running_worker(peer) as (worker, received):
        for index in range(1, count + 1):
            time.sleep(WIRE_PAUSE)
            with transaction.atomic():
                transaction.on_commit(lambda: commits.append(time.time()))
                booking(index)
            wait_for_server(received + index, timeout=60, worker=worker)
    arrivals = server_arrivals(count)
    latencies = [arrived - committed for arrived, committed in zip(arrivals, commits, strict=True)]
    return {"seconds": statistics.median(latencies), "messages": count, "latencies": latencies}


def stop(process):
    """End the worker this process started (its own process group) as Ctrl-C would:
    the queues' workers release their lock files then (not on SIGTERM)."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post_office_loop():
    from post_office.mail import send_queued_mail_until_done

    while True:
        send_queued_mail_until_done()
        time.sleep(0.2)


def fill(peer, count, attachment_kb):
    peer.reset()
    queue_messages(count, os.urandom(attachment_kb * 1024), chunk=10)
    return {"messages": count}


def resident_kb():
    """The process's resident memory now, in KiB (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def drain_rss(peer):

    peer.taken_over()
    rss_before = resident_kb()
    before = server_count()
    statements = Statements()
    started = time.perf_counter()
    with statements.counting():
        peer.drain()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "messages": server_count() - before,
        "statements": statements.count,
        "rss_before_kb": rss_before,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=[
            "setup",
            "handover",
            "handover-idle",
            "store",
            "drain",
            "bookings",
            "on-the-wire",
            "fill",
            "drain-rss",
            "post-office-loop",
        ],
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--attachment-kb", type=int, default=1024)
    args = parser.parse_args()

    import django

    django.setup()
    peer = PEERS[os.environ.get("BENCH_PEER", "ours")]()
    if args.action == "post-office-loop":
        post_office_loop()
    elif args.action == "setup":
        peer.setup()
        result = {}
    elif args.action == "handover":
        result = handover(peer, args.count)
    elif args.action == "handover-idle":
        result = handover(peer, args.count, idle=True)
    elif args.action == "store":
        result = handover(peer, args.count, sending=False)
    elif args.action == "drain":
        result = drain(peer, args.count)
    elif args.action == "bookings":
        result = bookings(peer, args.count)
    elif args.action == "on-the-wire":
        result = on_the_wire(peer, args.count)
    elif args.action == "fill":
        result = fill(peer, args.count, args.attachment_kb)
    else:
        result = drain_rss(peer)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
