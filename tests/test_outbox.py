"""Issue 5 — nothing lost: fault tests of the outbox against the real local TLS server."""

import asyncio
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from tests import smtpservers
from tests.conftest import MAILBOX
from tests.utils import committed, configure, submit
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import DeliveryAttempt, OutboxMessage
from wagtail_icarus_smtp.models.outbox import DEFERRED
from wagtail_icarus_smtp.outbox import store  # noqa: F401 (outbox.store.Batch)
from wagtail_icarus_smtp.smtp import failures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("our_backend")]


@pytest.fixture
def data_hook(monkeypatch):
    """``data_hook(func)``: ``func(envelope, count)`` may return a reply for DATA (else the
    server accepts); ``count`` is the number of DATA commands seen so far."""
    seen = []
    original = smtpservers._Handler.handle_DATA

    def install(func):
        async def handle_DATA(self, server, session, envelope):
            seen.append(envelope)
            reply = func(envelope, len(seen))
            if asyncio.iscoroutine(reply):
                reply = await reply
            if reply is not None:
                return reply
            return await original(self, server, session, envelope)

        monkeypatch.setattr(smtpservers._Handler, "handle_DATA", handle_DATA)

    return install


@pytest.fixture
def rcpt_replies(monkeypatch):
    """``rcpt_replies({address: reply})``: refuse these recipients with these replies."""

    original = smtpservers._Handler.handle_RCPT

    def install(replies):
        async def handle_RCPT(self, server, session, envelope, address, options):
            if address in replies:
                return replies[address]
            return await original(self, server, session, envelope, address, options)

        monkeypatch.setattr(smtpservers._Handler, "handle_RCPT", handle_RCPT)

    return install


def send(count=1, prefix="M", **kwargs):
    messages = [
        EmailMessage(f"{prefix}{i}", "Text", kwargs.get("from_email"), [f"k{i}@example.com"])
        for i in range(count)
    ]
    with committed():
        assert EmailBackend().send_messages(messages) == count
    return messages


def make_due():
    OutboxMessage.objects.exclude(status="sent").update(next_attempt_at=timezone.now())


def statuses():
    return list(OutboxMessage.objects.order_by("pk").values_list("status", flat=True))


def message_ids(server):
    return [m.message["Message-ID"] for m in server.messages]


# -- held while sending is off -----------------------------------------------------------


def test_held_while_off_then_each_delivered_exactly_once_in_order(server):
    configure(server, enabled=None)
    send(5)
    assert statuses() == ["held"] * 5
    assert server.messages == []

    form = submit(port=str(server.port))  # the editor switches sending on
    assert not form.errors

    received = server.wait_for_messages(5)
    assert [m.message["Subject"] for m in received] == [f"M{i}" for i in range(5)]
    assert statuses() == ["sent"] * 5
    assert sorted(message_ids(server)) == sorted(
        OutboxMessage.objects.values_list("message_id", flat=True)
    )
    # Saving again (no change) sends nothing twice.
    submit(port=str(server.port))
    outbox.drain()
    assert len(server.messages) == 5


def test_held_before_any_setup_goes_out_when_the_setup_completes(server):
    send(2)  # nothing configured at all
    assert statuses() == ["held", "held"]

    configure(server)  # the connection test succeeds: live.promote

    assert len(server.wait_for_messages(2)) == 2
    assert statuses() == ["sent", "sent"]


def test_sender_is_the_mailbox_in_use_when_delivered(server):
    """The mailbox may change while a message is held: From is set at delivery."""
    configure(server, enabled=None, from_name="Alter Name")
    send(1, from_email="shop@dropzone.example")

    submit(port=str(server.port), from_name="Dropzone Musterstadt")

    message = server.wait_for_messages(1)[0]
    assert message.mail_from == MAILBOX
    assert message.message["From"] == f"Dropzone Musterstadt <{MAILBOX}>"
    assert message.message["Reply-To"] == "shop@dropzone.example"
    assert message.message["Subject"] == "M0"
    assert message.message.get_all("From") == [f"Dropzone Musterstadt <{MAILBOX}>"]


def test_disabled_again_holds_what_is_still_queued(server):
    configure(server)
    server.stop()
    send(1)
    assert statuses() == ["deferred"]
    submit(port=str(server.port), enabled=None)
    make_due()

    assert outbox.drain().held == 1
    assert statuses() == ["held"]


# -- temporary and permanent failures ------------------------------------------------------


def test_server_stopped_during_a_batch_defers_and_delivers_when_back(server, data_hook):
    configure(server)

    def stop_at_third(envelope, count):
        if count == 3:
            threading.Thread(target=server.stop).start()
            return asyncio.sleep(2, result="250 never answered")
        return None

    data_hook(stop_at_third)
    send(5)

    assert len(server.messages) == 2
    assert statuses() == ["sent", "sent", "deferred", "deferred", "deferred"]
    assert OutboxMessage.objects.get(subject="M2").last_category == "connection"

    data_hook(lambda envelope, count: None)
    server.start()
    make_due()
    result = outbox.drain()

    assert result.sent == 3
    assert [m.message["Subject"] for m in server.wait_for_messages(5)] == [
        f"M{i}" for i in range(5)
    ]
    assert statuses() == ["sent"] * 5


def test_451_is_retried_with_backoff_and_the_same_message_id(server, settings):
    settings.ICARUS_SMTP_RETRY_DELAY = 60
    configure(server)
    server.data_reply = smtpservers.format_reply("451 4.3.0 Try again later")
    before = timezone.now()
    send(1)

    row = OutboxMessage.objects.get()
    assert row.status == "deferred"
    assert row.attempts == 1
    assert row.last_reply.startswith("451")
    delay = (row.next_attempt_at - before).total_seconds()
    assert 30 <= delay <= 61
    assert outbox.drain().attempted == 0  # not due yet: nothing is tried

    server.data_reply = None
    make_due()
    assert outbox.drain().sent == 1

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert list(row.delivery_attempts.values_list("status", flat=True)) == ["deferred", "sent"]
    assert message_ids(server) == [row.message_id]


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.ICARUS_SMTP_RETRY_DELAY = 60
    settings.ICARUS_SMTP_RETRY_MAX_DELAY = 3600
    delays = {n: [outbox.retry_delay(n) for _ in range(50)] for n in (1, 2, 3, 10)}
    assert all(30 <= d <= 60 for d in delays[1])
    assert all(60 <= d <= 120 for d in delays[2])
    assert all(120 <= d <= 240 for d in delays[3])
    assert all(1800 <= d <= 3600 for d in delays[10])
    assert len(set(delays[1])) > 1  # jitter


def test_too_old_deferred_mail_fails(server, settings):
    settings.ICARUS_SMTP_MAX_AGE = 3600
    configure(server)
    server.stop()
    send(1)
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(hours=2))
    make_due()

    outbox.drain()

    row = OutboxMessage.objects.get()
    assert (row.status, row.last_category) == ("failed", "connection")


def test_550_fails_at_once_with_the_category(server):
    configure(server)
    server.mail_from_reply = smtpservers.format_reply(
        "550 5.7.1 Sender address is not allowed for this account"
    )
    send(1)

    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts, row.last_category) == ("failed", 1, "sender_rejected")
    assert "550 5.7.1" in row.last_reply
    make_due()
    assert outbox.drain().attempted == 0  # failed is final


def test_one_of_three_recipients_refused_is_recorded_per_recipient(server, rcpt_replies):
    configure(server)
    rcpt_replies({"b@example.com": "550 5.1.1 User unknown"})
    with committed():
        mail.send_mail("Drei", "x", None, ["a@example.com", "b@example.com", "c@example.com"])

    row = OutboxMessage.objects.get()
    assert row.status == "failed"  # never counted as fully sent
    assert row.recipient_status["a@example.com"]["status"] == "sent"
    assert row.recipient_status["c@example.com"]["status"] == "sent"
    assert row.recipient_status["b@example.com"] == {
        "status": "failed",
        "reply": "550 5.1.1 User unknown",
    }
    assert "1 recipient(s) refused" in row.last_reply
    assert server.wait_for_messages(1)[0].rcpt_tos == ["a@example.com", "c@example.com"]
    attempt = DeliveryAttempt.objects.get()
    assert attempt.refused == {"b@example.com": "550 5.1.1 User unknown"}


def test_a_temporarily_refused_recipient_alone_is_retried(server, rcpt_replies):
    configure(server)
    rcpt_replies({"b@example.com": "450 4.2.1 Mailbox busy"})
    with committed():
        mail.send_mail("Zwei", "x", None, ["a@example.com", "b@example.com"])
    assert OutboxMessage.objects.get().status == "deferred"

    rcpt_replies({})
    make_due()
    outbox.drain()

    assert [m.rcpt_tos for m in server.wait_for_messages(2)] == [
        ["a@example.com"],
        ["b@example.com"],
    ]
    assert statuses() == ["sent"]


def test_a_poison_message_does_not_block_the_others(server, data_hook):
    configure(server)
    data_hook(
        lambda envelope, count: "554 5.6.0 Message rejected" if b"M1" in envelope.content else None
    )
    send(3)

    assert statuses() == ["sent", "failed", "sent"]
    assert [m.message["Subject"] for m in server.messages] == ["M0", "M2"]


def test_a_message_whose_body_is_gone_fails_without_blocking(server):
    configure(server, enabled=None)
    send(2)
    OutboxMessage.objects.filter(subject="M0").update(mime=None)

    submit(port=str(server.port))

    assert statuses() == ["failed", "sent"]
    assert [m.message["Subject"] for m in server.wait_for_messages(1)] == ["M1"]


# -- transactions --------------------------------------------------------------------------


def test_an_unexpected_error_after_the_commit_is_not_the_callers_and_loses_nothing(
    server, monkeypatch, caplog, settings
):
    """A bug while sending right after the caller's commit does not reach the caller
    (the booking is saved, no error page); the rows go to a worker, which sends them."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True  # the opt-in: sending in the request
    configure(server)
    real_connect = outbox.delivery.transport.connect
    calls = []

    def connect_failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("an unexpected bug")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(outbox.delivery.transport, "connect", connect_failing_once)

    send(2)  # returns the count: nothing raised to the caller

    assert "Sending accepted e-mails failed" in caplog.text
    assert len(calls) == 2  # the worker's drain (django-q2 runs it inline in tests)
    assert [m.message["Subject"] for m in server.wait_for_messages(2)] == ["M0", "M1"]
    assert statuses() == ["sent", "sent"]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_caller_sends_nothing_committed_caller_sends(server):
    configure(server)

    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("Zurück", "x", None, ["a@example.com"])
        raise RuntimeError("the booking failed")

    assert OutboxMessage.objects.count() == 0
    with transaction.atomic():
        mail.send_mail("Gebucht", "x", None, ["a@example.com"])
        assert server.messages == []  # not before the commit

    assert [m.message["Subject"] for m in server.wait_for_messages(1)] == ["Gebucht"]
    assert statuses() == ["sent"]


# -- claiming --------------------------------------------------------------------------------


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(settings):
    outbox.accept(
        [outbox.Envelope("<1@x>", "s", "a@x", False, ["b@x"], b"Subject: s\r\n\r\nx")],
        held=False,
    )
    first, token = outbox.claim()
    assert len(first) == 1
    assert outbox.claim()[0] == []

    OutboxMessage.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again, other = outbox.claim()
    assert [row.pk for row in again] == [first[0].pk]
    assert other != token


def test_a_worker_whose_lease_was_taken_over_does_not_overwrite_the_outcome(server):
    """A slow worker's late result must not clobber what the row's new owner recorded."""
    configure(server)
    outbox.accept(
        [outbox.Envelope("<1@x>", "s", "a@x", False, ["b@x"], b"Subject: s\r\n\r\nx")],
        held=False,
    )
    (slow,), old_token = outbox.claim()
    OutboxMessage.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert outbox.drain().sent == 1  # the new owner sent it

    late = outbox.store.Batch([slow], old_token)
    late.finish(slow, DEFERRED, failures.Failure("timeout", "late"))
    late.close()  # its group is written

    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts, row.last_reply) == ("sent", 1, "")


def test_each_claim_takes_its_own_rows_until_none_are_left():
    """Claims never overlap and never come back empty while due rows remain."""
    outbox.accept(
        [
            outbox.Envelope(f"<{i}@x>", "s", "a@x", False, ["b@x"], b"Subject: s\r\n\r\nx")
            for i in range(7)
        ],
        held=False,
    )
    batches = [outbox.claim(limit=3)[0] for _ in range(4)]
    sizes = [len(batch) for batch in batches]
    assert sizes == [3, 3, 1, 0]
    pks = [row.pk for batch in batches for row in batch]
    assert len(pks) == len(set(pks)) == 7


def test_purge_deletes_old_bodies_but_keeps_waiting_ones_and_metadata(server, settings):
    configure(server)
    send(2)
    server.stop()
    send(1, prefix="W")
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(days=8))

    bodies, rows = outbox.purge()

    assert (bodies, rows) == (2, 0)
    sent = OutboxMessage.objects.filter(status="sent")
    assert all(row.mime is None and row.body_purged_at for row in sent)
    assert OutboxMessage.objects.get(status="deferred").mime is not None

    settings.ICARUS_SMTP_LOG_RETENTION = 7
    assert outbox.purge() == (0, 2)


def test_rows_born_claimed_are_taken_over_when_the_accepting_process_died(server, settings):
    """The backend leases what it accepts to its own process; if that process dies
    between the commit and the delivery, a worker sends the rows once the lease ran out."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True  # the opt-in: sending in the request
    configure(server)
    with TestCase.captureOnCommitCallbacks(execute=False):  # the process "dies" here
        assert EmailBackend().send_messages([EmailMessage("Verwaist", "x", None, ["k@x.de"])])
    row = OutboxMessage.objects.get()
    assert row.status == "sending"
    assert outbox.drain().sent == 0  # still leased: no worker touches it

    OutboxMessage.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert outbox.drain().sent == 1

    assert [m.message["Subject"] for m in server.wait_for_messages(1)] == ["Verwaist"]
    assert OutboxMessage.objects.get().status == "sent"
