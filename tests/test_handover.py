"""Hand-over without waiting: the request stores the message and wakes the worker —
no SMTP session in the request, one pending task for a burst, single messages before
bulk ones, no backlog left behind, and a missing worker is said, not hidden."""

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from django.core.mail import EmailMessage
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from tests import smtpservers
from tests.utils import XHR, committed, configure, german, numbered_envelopes
from wagtail_icarus_smtp import conf, outbox, queue, tasks
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import DeliveryWakeup, OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.outbox import alerts, delivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("our_backend")]


@pytest.fixture
def no_inline_tasks(server, monkeypatch):
    """A working live configuration; from then on tasks go into the ORM broker, as on
    a site, and the test runs them as a worker would."""
    configure(server)
    monkeypatch.setattr(Conf, "SYNC", False)
    OrmQ.objects.all().delete()


def queued_deliveries():
    return [q for q in OrmQ.objects.all() if q.task["func"] == queue.DELIVER]


def run_queued_deliveries():
    """What a worker does with the queued delivery tasks, until none is left."""
    for _ in range(20):
        found = queued_deliveries()
        if not found:
            return
        OrmQ.objects.filter(pk__in=[q.pk for q in found]).delete()
        for _ in found:
            tasks.deliver_outbox()
    raise AssertionError("the deliveries never ended")


def hand_over(*subjects):
    with committed():
        messages = [EmailMessage(s, "Text", None, ["kunde@example.org"]) for s in subjects]
        return EmailBackend().send_messages(messages)


def test_a_booking_opens_no_smtp_connection_and_a_burst_queues_one_task(server, no_inline_tasks):
    sessions = server.sessions

    for number in range(3):
        assert hand_over(f"Buchung {number}") == 1

    assert server.sessions == sessions  # the requests never talked to the mail server
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"queued"}
    assert len(queued_deliveries()) == 1  # three bookings, one pending task

    run_queued_deliveries()

    subjects = [m.message["Subject"] for m in server.wait_for_messages(3)]
    assert subjects == ["Buchung 0", "Buchung 1", "Buchung 2"]
    assert server.sessions == sessions + 1  # one connection for all three
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_mail_after_the_worker_started_asks_again(server, no_inline_tasks):
    hand_over("Erste")
    run_queued_deliveries()  # the worker answered: the next mail needs a new task

    hand_over("Zweite")

    assert len(queued_deliveries()) == 1
    run_queued_deliveries()
    assert [m.message["Subject"] for m in server.wait_for_messages(2)] == ["Erste", "Zweite"]


def test_a_password_reset_goes_before_a_newsletter(server, no_inline_tasks):
    hand_over("Newsletter 1", "Newsletter 2", "Newsletter 3")  # one call: bulk
    hand_over("Passwort zurücksetzen")

    run_queued_deliveries()

    subjects = [m.message["Subject"] for m in server.wait_for_messages(4)]
    assert subjects[0] == "Passwort zurücksetzen"
    assert subjects[1:] == ["Newsletter 1", "Newsletter 2", "Newsletter 3"]


def test_a_drain_that_stops_at_its_cap_queues_the_next_one(
    server, no_inline_tasks, settings, monkeypatch
):
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 2
    monkeypatch.setattr(delivery, "MAX_BATCHES", 1)  # one batch of two per task
    for number in range(5):
        hand_over(f"M{number}")
    OrmQ.objects.all().delete()
    DeliveryWakeup.objects.all().delete()

    tasks.deliver_outbox()

    assert OutboxMessage.objects.filter(status="sent").count() == 2
    assert len(queued_deliveries()) == 1  # the rest is not left for the health check
    run_queued_deliveries()
    assert OutboxMessage.objects.filter(status="sent").count() == 5


def test_without_a_worker_the_admin_says_so_and_the_mail_waits(
    server, no_inline_tasks, client, smtp_editor
):
    hand_over("Buchung")
    DeliveryWakeup.objects.update(requested_at=timezone.now() - timedelta(minutes=2))
    german(smtp_editor)
    client.force_login(smtp_editor)

    report = client.get(reverse("wagtail_icarus_smtp:status")).json()
    banner = client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).json()

    [alert] = [a for a in report["alerts"] if a["kind"] == "no_worker"]
    assert "Hintergrundprozess" in alert["text"]
    assert "qcluster" in alert["text"]
    assert "Hintergrundprozess" in banner["text"]
    assert report["waiting_count"] == 1
    assert OutboxMessage.objects.get().status == "queued"  # kept, nothing lost


def test_a_worker_that_answers_in_time_is_no_alert(server, no_inline_tasks, client, editor):
    hand_over("Buchung")  # asked just now: within the grace period
    client.force_login(editor)

    report = client.get(reverse("wagtail_icarus_smtp:status")).json()

    assert [a for a in report["alerts"] if a["kind"] == "no_worker"] == []


def test_sending_in_the_request_stays_an_opt_in(server, settings, no_inline_tasks):
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True

    hand_over("Sofort")

    assert [m.message["Subject"] for m in server.wait_for_messages(1)] == ["Sofort"]
    assert queued_deliveries() == []


def test_ten_thousand_queued_are_all_delivered_by_the_worker_alone(
    server, no_inline_tasks, settings
):
    """No backlog is left for the hourly health check: each drain that stops at its cap
    queues the next one until the outbox is empty."""
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 100  # a drain sends 5,000 at most
    count = 10_000
    envelopes = numbered_envelopes(count, prefix="b", sender="")
    with committed():
        outbox.accept(envelopes, held=False, bulk=True)
        transaction.on_commit(alerts.handed_over)
    assert count > delivery.MAX_BATCHES * conf.get("OUTBOX_BATCH_SIZE")  # more than one drain

    run_queued_deliveries()

    assert OutboxMessage.objects.filter(status="sent").count() == count
    received = {m.message["Message-ID"] for m in server.wait_for_messages(count, timeout=60)}
    assert len(received) == count


def test_while_a_drain_is_pending_a_booking_reads_the_wake_up_and_writes_only_its_row(
    server, no_inline_tasks, django_assert_num_queries
):
    hand_over("Buchung 1")  # asks for a drain

    with django_assert_num_queries(3) as captured:  # settings, the message, the wake-up
        hand_over("Buchung 2")

    writes = [q["sql"] for q in captured if not q["sql"].startswith("SELECT")]
    assert len(writes) == 1
    assert "wagtail_icarus_smtp_outboxmessage" in writes[0]
    assert len(queued_deliveries()) == 1


def test_a_drain_hands_over_at_its_time_limit_and_the_next_one_sends_the_rest(
    server, no_inline_tasks, settings, monkeypatch
):
    """A drain stays within django-q2's task timeout: at ``ICARUS_SMTP_DRAIN_SECONDS``
    it gives back what it has not started and queues the next drain."""
    settings.ICARUS_SMTP_DRAIN_SECONDS = 0.3
    original = smtpservers._Handler.handle_DATA

    async def slow_data(self, server_, session, envelope):
        await asyncio.sleep(0.05)
        return await original(self, server_, session, envelope)

    monkeypatch.setattr(smtpservers._Handler, "handle_DATA", slow_data)
    hand_over(*[f"M{number}" for number in range(30)])
    OrmQ.objects.all().delete()
    DeliveryWakeup.objects.all().delete()

    first = tasks.deliver_outbox()

    assert 0 < first["sent"] < 30
    assert OutboxMessage.objects.filter(status="queued").count() == 30 - first["sent"]
    assert len(queued_deliveries()) == 1  # the rest is not left for the health check
    run_queued_deliveries()
    received = [m.message["Subject"] for m in server.wait_for_messages(30)]
    assert sorted(received) == sorted(f"M{number}" for number in range(30))  # each once


def test_a_booking_after_sending_was_switched_off_is_held_at_once(server, no_inline_tasks):
    """The configuration the backend reads is compiled once, but read fresh each time:
    a change saved a moment ago applies to the very next booking."""
    hand_over("Vorher")
    SmtpSettings.objects.update(enabled=False)

    hand_over("Nachher")

    assert dict(OutboxMessage.objects.values_list("subject", "status")) == {
        "Vorher": "queued",
        "Nachher": "held",
    }


def test_a_newsletter_larger_than_one_insert_is_stored_whole_and_delivered(server, no_inline_tasks):
    """SQLite takes 999 values per statement: 150 messages are stored in several
    inserts, every row complete, and the worker sends each one."""
    subjects = [f"Newsletter {number}" for number in range(150)]

    assert hand_over(*subjects) == 150

    rows = OutboxMessage.objects.order_by("pk")
    assert [row.subject for row in rows] == subjects
    assert {(row.status, row.bulk, tuple(row.recipients)) for row in rows} == {
        ("queued", True, ("kunde@example.org",))
    }
    assert all(bytes(row.mime).startswith(b"Content-Type: text/plain") for row in rows)
    run_queued_deliveries()
    received = [m.message["Subject"] for m in server.wait_for_messages(150)]
    assert sorted(received) == sorted(subjects)


@pytest.mark.django_db(transaction=True)
def test_waking_the_worker_leaves_the_request_its_database_connection(server, no_inline_tasks):
    """django-q2's ORM broker closes the connection before it queues a task unless a
    transaction is open; the request's next statement would have to open a new one."""
    connection.ensure_connection()
    opened = connection.connection
    with transaction.atomic():
        EmailBackend().send_messages([EmailMessage("Buchung", "Text", None, ["k@example.org"])])

    assert len(queued_deliveries()) == 1  # this booking woke the worker
    assert connection.connection is opened


@pytest.mark.django_db(transaction=True)
def test_a_burst_during_the_drain_goes_out_with_it_and_later_mail_wakes_again(
    server, no_inline_tasks, settings
):
    """A drain that emptied the outbox stays a moment: bookings meanwhile only read the
    wake-up and go out with it (no task each); after it ended, mail wakes it again."""
    settings.ICARUS_SMTP_DRAIN_LINGER = 1
    hand_over("Erste")
    OrmQ.objects.all().delete()  # the worker has taken the task
    results = []

    def worker():
        try:
            results.append(tasks.deliver_outbox())
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    server.wait_for_messages(1)
    wait_until(lambda: DeliveryWakeup.objects.filter(requested_at__isnull=False).exists())
    for number in range(3):
        hand_over(f"Buchung {number}")
    assert queued_deliveries() == []  # they only read the wake-up
    thread.join(timeout=30)

    assert results[0]["sent"] == 4
    received = [m.message["Subject"] for m in server.wait_for_messages(4)]
    assert sorted(received) == ["Buchung 0", "Buchung 1", "Buchung 2", "Erste"]
    hand_over("Später")
    assert len(queued_deliveries()) == 1


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)
