"""Issue 11 (speed): SMTP PIPELINING where the server offers it, lock-step elsewhere,
and outcomes written a group at a time — against the real local TLS server
(``SmtpServer(pipelining=True)`` advertises PIPELINING and records what it read)."""

import asyncio
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import smtpservers
from tests.conftest import MAILBOX, PASSWORD
from tests.test_outbox import data_hook, rcpt_replies  # noqa: F401 (fixtures)
from tests.utils import configure
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import DeliveryAttempt, OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.outbox import store
from wagtail_icarus_smtp.smtp import pipelining, transport
from wagtail_icarus_smtp.smtp.deadline import Deadline

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def piped(start_server, trust):
    """A STARTTLS server that advertises PIPELINING, trusted, configured, sending off."""
    server = start_server(pipelining=True)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    return server


def queue_up(count, recipients=None, mime=None):
    """``count`` messages waiting in the outbox, then sending switched on (no drain)."""
    outbox.accept(
        [
            outbox.Envelope(
                message_id=f"<m{i}@test>",
                subject=f"M{i}",
                sender="shop@dropzone.example",
                has_reply_to=False,
                recipients=(recipients or {}).get(i, [f"k{i}@example.com"]),
                mime=mime or f"Subject: M{i}\r\nMessage-ID: <m{i}@test>\r\n\r\nM{i}\r\n".encode(),
            )
            for i in range(count)
        ],
        held=True,
    )
    OutboxMessage.objects.update(status="queued")
    SmtpSettings.objects.update(enabled=True)


def statuses():
    return list(OutboxMessage.objects.order_by("pk").values_list("status", flat=True))


def reads_with(server, *parts):
    return [read for read in server.reads if all(part in read for part in parts)]


def test_mail_rcpt_and_data_go_out_in_one_write(piped):
    queue_up(3, recipients={i: [f"a{i}@example.com", f"b{i}@example.com"] for i in range(3)})

    assert outbox.drain().sent == 3

    assert [m.message["Subject"] for m in piped.wait_for_messages(3)] == ["M0", "M1", "M2"]
    assert [m.rcpt_tos for m in piped.messages][1] == ["a1@example.com", "b1@example.com"]
    for i in range(3):  # each message's commands arrived together, in one read
        commands = (
            f"MAIL FROM:<{MAILBOX}>".encode(),
            f"RCPT TO:<a{i}@example.com>\r\nRCPT TO:<b{i}@example.com>\r\nDATA\r\n".encode(),
        )
        assert len(reads_with(piped, *commands)) == 1
    assert statuses() == ["sent"] * 3


def test_the_next_message_follows_the_end_of_data_in_the_same_write(piped):
    queue_up(4)

    outbox.drain()

    follow_ups = reads_with(piped, b"\r\n.\r\nMAIL FROM:", b"RCPT TO:", b"DATA\r\n")
    assert len(follow_ups) == 3  # messages 2-4 rode on the previous message's content
    assert [m.message["Subject"] for m in piped.wait_for_messages(4)] == [f"M{i}" for i in range(4)]
    # One write per message after the login, plus the last content and QUIT (lock-step:
    # MAIL, RCPT, DATA and the content for each, 17 writes).
    after_login = piped.reads[piped.reads.index(reads_with(piped, b"MAIL FROM:")[0]) :]
    assert len(after_login) == 4 + 2


def test_a_server_without_pipelining_goes_lock_step(server):
    configure(server, enabled=None)
    server.clear()
    queue_up(2, recipients={0: ["a@example.com", "b@example.com"]})

    assert outbox.drain().sent == 2

    assert reads_with(server, b"MAIL FROM:", b"RCPT TO:") == []  # one command per write
    assert reads_with(server, b"RCPT TO:<a@example.com>", b"RCPT TO:<b@example.com>") == []
    assert [m.rcpt_tos for m in server.wait_for_messages(2)] == [
        ["a@example.com", "b@example.com"],
        ["k1@example.com"],
    ]


def test_a_refused_recipient_in_a_pipelined_group_is_recorded_for_that_recipient(
    piped,
    rcpt_replies,  # noqa: F811 (the fixture imported above)
):
    rcpt_replies({"b@example.com": "550 5.1.1 User unknown"})
    queue_up(3, recipients={1: ["a@example.com", "b@example.com", "c@example.com"]})

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    row = OutboxMessage.objects.get(subject="M1")
    assert row.recipient_status == {
        "a@example.com": {"status": "sent", "reply": ""},
        "b@example.com": {"status": "failed", "reply": "550 5.1.1 User unknown"},
        "c@example.com": {"status": "sent", "reply": ""},
    }
    assert "1 recipient(s) refused" in row.last_reply
    received = piped.wait_for_messages(3)
    assert received[1].rcpt_tos == ["a@example.com", "c@example.com"]
    attempt = DeliveryAttempt.objects.get(message=row)
    assert attempt.refused == {"b@example.com": "550 5.1.1 User unknown"}


def test_all_recipients_refused_fails_that_message_and_the_next_still_goes(
    piped,
    rcpt_replies,  # noqa: F811 (the fixture imported above)
):
    """DATA is refused after every RCPT was (aiosmtpd: 503); RSET, then the next one."""
    rcpt_replies({"x@example.com": "550 5.1.1 User unknown"})
    queue_up(2, recipients={0: ["x@example.com"]})

    outbox.drain()

    assert statuses() == ["failed", "sent"]
    row = OutboxMessage.objects.get(subject="M0")
    assert row.recipient_status["x@example.com"]["status"] == "failed"
    assert [m.message["Subject"] for m in piped.wait_for_messages(1)] == ["M1"]
    assert len(reads_with(piped, b"RSET\r\nMAIL FROM:")) == 1


def test_a_refused_sender_is_recorded_like_lock_step(piped):
    piped.mail_from_reply = "550 5.7.1 Sender address is not allowed for this account"
    queue_up(2)

    outbox.drain()

    rows = list(OutboxMessage.objects.order_by("pk"))
    assert [(row.status, row.last_category) for row in rows] == [("failed", "sender_rejected")] * 2
    assert rows[0].last_reply.startswith("550 5.7.1")
    assert piped.messages == []


def test_a_message_refused_at_the_end_of_data_does_not_block_the_others(
    piped,
    data_hook,  # noqa: F811 (the fixture imported above)
):
    data_hook(
        lambda envelope, count: "554 5.6.0 Message rejected" if b"M1" in envelope.content else None
    )
    queue_up(3)

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    assert OutboxMessage.objects.get(subject="M1").last_reply.startswith("554 5.6.0")
    assert [m.message["Subject"] for m in piped.messages] == ["M0", "M2"]


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_421_in_a_pipelined_group_defers_the_rest_with_the_421(start_server, trust, stage):
    server = start_server(pipelining=True, end_after=1, end_at=stage)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    queue_up(3, recipients={i: [f"a{i}@example.com", f"b{i}@example.com"] for i in range(3)})

    result = outbox.drain()

    assert statuses() == ["sent", "deferred", "deferred"]
    assert (result.sent, result.deferred) == (1, 2)
    for row in OutboxMessage.objects.order_by("pk")[1:]:
        assert row.last_reply.startswith("421 4.7.0 Too many messages")
        assert all(entry["status"] != "sent" for entry in row.recipient_status.values())
    assert server.sessions == 1
    assert not server.commands[-1].upper().startswith("QUIT")  # the session had ended


def test_pipelined_content_is_dot_stuffed_and_bare_line_ends_cannot_end_it(piped):
    smuggled = (
        b"Subject: S\r\n\r\n.leading dot\r\n"
        b"text\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n"
        b"DATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n"
    )
    queue_up(1, mime=smuggled)

    assert outbox.drain().sent == 1

    [received] = piped.wait_for_messages(1)
    assert received.rcpt_tos == ["k0@example.com"]
    assert b"\r\n.leading dot\r\n" in received.data
    assert b"text\r\n.\r\nMAIL FROM:<evil@example.com>" in received.data
    time.sleep(0.2)
    assert len(piped.messages) == 1  # nothing was smuggled in after it
    assert "RCPT TO:<victim@example.com>" not in piped.commands


def test_the_transcript_records_a_pipelined_exchange(piped):
    transcript = []
    client = transport.connect(
        transport.Mailbox("localhost", piped.port, MAILBOX, PASSWORD),
        Deadline(10),
        transcript=transcript,
    )
    message = b"Subject: T\r\n\r\nHallo\r\n"
    try:
        outcomes = list(
            pipelining.send(client, [pipelining.Transaction(MAILBOX, ["t@example.com"], message)])
        )
    finally:
        transport.quit_quietly(client)

    assert [outcome for _transaction, outcome in outcomes] == [{}]
    start = transcript.index(f"C: MAIL FROM:<{MAILBOX}> size={len(message)}")
    assert transcript[start + 1 : start + 3] == ["C: RCPT TO:<t@example.com>", "C: DATA"]
    assert transcript[start + 3].startswith("S: 250")
    assert any(line.startswith("S: 354") for line in transcript)
    assert "C: Hallo" in transcript
    assert "C: ****" in transcript  # AUTH masked as always


def drain_counting(count):
    queue_up(count)
    with CaptureQueriesContext(connection) as queries:
        result = outbox.drain()
    assert result.sent == count
    OutboxMessage.objects.all().delete()
    return len(queries)


def test_the_bookkeeping_is_a_few_statements_per_batch(piped, monkeypatch):
    """Claim, bodies, the outcomes a group at a time and the attempts: about as many
    statements for 400 messages as for 40, at most 0.05 per message."""
    # Outcomes are also written every FLUSH_SECONDS: on a loaded CI machine the count
    # would then depend on its speed. Here only the group size counts.
    monkeypatch.setattr(store, "FLUSH_SECONDS", 60)

    few, many = drain_counting(40), drain_counting(400)

    assert many <= 0.05 * 400
    assert many - few <= 400 // store.GROUP_SIZE + 3  # groups, and attempts 166 per INSERT
    assert len(piped.wait_for_messages(440)) == 440


def test_a_slow_server_has_each_outcome_written_at_once(
    piped,
    data_hook,  # noqa: F811 (the fixture imported above)
):
    """Slower than FLUSH_SECONDS per message: one write per message, as before, so a
    killed worker re-sends at most one message."""
    data_hook(lambda envelope, count: _later(0.08))
    queue_up(3)

    with CaptureQueriesContext(connection) as queries:
        outbox.drain()

    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "CASE" in q["sql"]]
    assert len(writes) == 3
    assert statuses() == ["sent"] * 3


def test_a_slow_login_does_not_have_the_first_outcome_written_alone(piped, monkeypatch):
    """The 50 ms of a group count from the moment sending starts: a login slower than
    that (here each EHLO takes 0.1 s) does not make the first outcome a group of one."""
    ehlo = smtpservers._Handler.handle_EHLO

    async def slow_ehlo(self, server, session, envelope, hostname, responses):
        await _later(0.1)  # aiosmtpd tells the hook's kind by its parameters
        return await ehlo(self, server, session, envelope, hostname, responses)

    monkeypatch.setattr(smtpservers._Handler, "handle_EHLO", slow_ehlo)
    queue_up(3)

    with CaptureQueriesContext(connection) as queries:
        assert outbox.drain().sent == 3

    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "CASE" in q["sql"]]
    assert len(writes) == 1


async def _later(seconds):
    await asyncio.sleep(seconds)


def test_a_recipient_that_cannot_be_written_fails_alone(piped):
    """No SMTPUTF8 on this server: the address cannot go on the wire; nothing of that
    message was written, the others go out."""
    queue_up(3, recipients={1: ["jürgen@example.com"]})

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    assert [m.message["Subject"] for m in piped.wait_for_messages(2)] == ["M0", "M2"]
    assert not any("jürgen".encode() in read for read in piped.reads)


def test_large_bodies_are_read_a_few_at_a_time(piped):
    """The claim reads sizes, not bodies; bodies come 1 MB per query at most, so
    memory stays bounded however many large messages wait."""
    body = b"Subject: Gross\r\n\r\n" + (b"x" * 998 + b"\r\n") * 400  # about 400 KB
    queue_up(20, mime=body)

    with CaptureQueriesContext(connection) as queries:
        assert outbox.drain().sent == 20

    selects = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    body_reads = [sql for sql in selects if '"mime"' in sql and "LENGTH" not in sql.upper()]
    assert len(body_reads) == 10  # two messages each
    assert len(piped.wait_for_messages(20)) == 20


def _three_claimed():
    outbox.accept(
        [
            outbox.Envelope(f"<{i}@x>", "s", "a@x", False, ["b@x"], b"Subject: s\r\n\r\nx")
            for i in range(3)
        ],
        held=False,
    )
    return outbox.claim()


def test_a_group_write_renews_the_lease_of_the_rest_of_the_batch():
    """A long batch that makes progress keeps its rows: no other worker takes them over
    (and sends them a second time) while this one is still at it."""
    rows, token = _three_claimed()
    soon = timezone.now() + timedelta(seconds=5)  # the batch has been at it for 295 s
    OutboxMessage.objects.update(lease_expires_at=soon)
    for row in rows:
        row.lease_expires_at = soon

    batch = store.Batch(rows, token, "via")
    batch.finish(rows[0], "sent")
    batch.flush()

    first, *rest = OutboxMessage.objects.order_by("pk")
    assert (first.status, first.lease_token, first.lease_expires_at) == ("sent", "", None)
    assert (first.attempts, first.sent_via) == (1, "via")
    for row in rest:
        assert (row.status, row.lease_token, row.attempts) == ("sending", token, 0)
        assert row.lease_expires_at > soon + timedelta(seconds=200)  # renewed (lease 300 s)


def test_a_group_write_early_in_the_lease_writes_only_its_own_rows():
    """While most of the lease is left, a group write leaves the batch's other rows
    alone (a database may rewrite a whole row, body included, for any change)."""
    rows, token = _three_claimed()
    leased_until = OutboxMessage.objects.get(pk=rows[1].pk).lease_expires_at

    batch = store.Batch(rows, token, "via")
    batch.finish(rows[0], "sent")
    with CaptureQueriesContext(connection) as queries:
        batch.flush()

    assert len(queries) == 1
    first, *rest = OutboxMessage.objects.order_by("pk")
    assert (first.status, first.lease_token, first.lease_expires_at) == ("sent", "", None)
    for row in rest:
        assert (row.status, row.lease_token, row.lease_expires_at) == (
            "sending",
            token,
            leased_until,
        )
