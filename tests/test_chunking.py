"""Issue 11 (speed): SMTP CHUNKING (RFC 3030) over PIPELINING — messages go out as
``BDAT <size> LAST`` without waiting for replies, a window at a time — against the
real local TLS server (``SmtpServer(pipelining=True, chunking=True)`` takes ``BDAT``
and records what it read)."""

import asyncio
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import smtpservers
from tests.conftest import MAILBOX, PASSWORD
from tests.test_outbox import data_hook, rcpt_replies  # noqa: F401 (fixtures)
from tests.test_pipelining import queue_up, reads_with, statuses
from tests.utils import configure
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import OutboxMessage
from wagtail_icarus_smtp.smtp import chunking, pipelining, transport
from wagtail_icarus_smtp.smtp.deadline import Deadline

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def chunked(start_server, trust):
    """A STARTTLS server that offers PIPELINING and CHUNKING, trusted, configured."""
    server = start_server(pipelining=True, chunking=True)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    return server


@pytest.fixture
def mail_replies(monkeypatch):
    """``mail_replies({n: reply})``: answer the n-th MAIL FROM (from 1) with ``reply``."""
    original = smtpservers._Handler.handle_MAIL
    seen = []

    def install(replies):
        async def handle_MAIL(self, server, session, envelope, address, options):
            seen.append(address)
            if len(seen) in replies:
                return replies[len(seen)]
            return await original(self, server, session, envelope, address, options)

        monkeypatch.setattr(smtpservers._Handler, "handle_MAIL", handle_MAIL)

    return install


def subjects(server, count):
    return [m.message["Subject"] for m in server.wait_for_messages(count)]


def session(server):
    """A client logged in to ``server`` that records a transcript."""
    transcript = []
    client = transport.connect(
        transport.Mailbox("localhost", server.port, MAILBOX, PASSWORD),
        Deadline(10),
        transcript=transcript,
    )
    return client, transcript


def test_messages_go_out_as_bdat_and_arrive_byte_for_byte(chunked):
    body = (
        b"Subject: Punkt\r\nMessage-ID: <p@test>\r\n\r\n.leading dot\r\n.\r\nbare LF\nbare CR\rend"
    )
    queue_up(1, mime=body)

    assert outbox.drain().sent == 1

    [received] = chunked.wait_for_messages(1)
    assert received.data.endswith(
        b"\r\n\r\n.leading dot\r\n.\r\nbare LF\r\nbare CR\r\nend\r\n"
    )  # no dot-stuffing to undo, bare line ends made CRLF, a final CRLF added
    assert received.rcpt_tos == ["k0@example.com"]
    sizes = [command for command in chunked.commands if command.startswith("BDAT")]
    assert sizes == [f"BDAT {len(received.data)} LAST"]  # exactly the message
    assert "DATA" not in chunked.commands
    assert OutboxMessage.objects.get().status == "sent"


def test_several_messages_go_out_in_one_write_before_any_reply(chunked):
    client, transcript = session(chunked)
    transactions = [
        pipelining.Transaction(
            MAILBOX, [f"t{i}@example.com"], f"Subject: T{i}\r\n\r\nT{i}".encode()
        )
        for i in range(5)
    ]
    try:
        outcomes = list(chunking.send(client, transactions))
    finally:
        transport.quit_quietly(client)

    assert [outcome for _transaction, outcome in outcomes] == [{}] * 5
    assert subjects(chunked, 5) == [f"T{i}" for i in range(5)]
    [write] = reads_with(chunked, b"BDAT ")
    assert write.count(b"BDAT ") == 5 and write.count(b"RSET\r\n") == 4
    # The transcript: every message was written before the first reply was read.
    start = transcript.index(f"C: MAIL FROM:<{MAILBOX}> size={len(transactions[0].data)}")
    first_reply = next(i for i, line in enumerate(transcript[start:]) if line.startswith("S: "))
    sent = transcript[start : start + first_reply]
    assert sum(line.startswith("C: BDAT ") and line.endswith(" LAST") for line in sent) == 5
    assert "C: T4" in sent


def test_a_full_window_waits_for_replies_and_then_goes_on(chunked, monkeypatch):
    monkeypatch.setattr(chunking, "WINDOW_REPLIES", 7)  # two messages of 4 replies (RSET)
    queue_up(6)

    assert outbox.drain().sent == 6

    assert subjects(chunked, 6) == [f"M{i}" for i in range(6)]
    writes = reads_with(chunked, b"BDAT ")
    assert writes[0].count(b"BDAT ") == 2  # the first two, then one as each is answered
    assert all(write.count(b"BDAT ") <= 2 for write in writes)
    assert sum(write.count(b"BDAT ") for write in writes) == 6
    assert statuses() == ["sent"] * 6


def test_a_refused_recipient_in_the_middle_is_recorded_for_that_recipient(
    chunked,
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
    received = chunked.wait_for_messages(3)
    assert received[1].rcpt_tos == ["a@example.com", "c@example.com"]
    assert [m.message["Subject"] for m in received] == ["M0", "M1", "M2"]
    assert len(reads_with(chunked, b"BDAT ")) == 1  # all three in one write


def test_a_refused_sender_in_the_middle_does_not_touch_the_next_message(chunked, mail_replies):
    """MAIL refused: the server refuses the BDAT too but reads its bytes (RFC 3030);
    they are not taken for commands, and the next message arrives as sent."""
    mail_replies({2: "550 5.7.1 Sender address is not allowed for this account"})
    queue_up(3, mime=None)
    OutboxMessage.objects.filter(subject="M1").update(
        mime=b"Subject: M1\r\n\r\nRSET\r\nMAIL FROM:<evil@example.com>\r\n"
    )

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    failed = OutboxMessage.objects.get(subject="M1")
    assert (failed.last_category, failed.last_reply[:9]) == ("sender_rejected", "550 5.7.1")
    received = chunked.wait_for_messages(2)
    assert [m.message["Subject"] for m in received] == ["M0", "M2"]
    assert received[1].data.endswith(b"Message-ID: <m2@test>\r\n\r\nM2\r\n")
    assert b"evil" not in received[1].data
    assert "MAIL FROM:<evil@example.com>" not in chunked.commands
    assert len(reads_with(chunked, b"BDAT ")) == 1


def test_all_recipients_refused_fails_that_message_and_the_next_still_goes(
    chunked,
    rcpt_replies,  # noqa: F811 (the fixture imported above)
):
    rcpt_replies({"x@example.com": "550 5.1.1 User unknown"})
    queue_up(3, recipients={1: ["x@example.com"]})

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    row = OutboxMessage.objects.get(subject="M1")
    assert row.recipient_status["x@example.com"]["status"] == "failed"
    assert subjects(chunked, 2) == ["M0", "M2"]


def test_a_message_refused_after_its_content_does_not_block_the_others(
    chunked,
    data_hook,  # noqa: F811 (the fixture imported above)
):
    data_hook(
        lambda envelope, count: "554 5.6.0 Message rejected" if b"M1" in envelope.content else None
    )
    queue_up(3)

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    assert OutboxMessage.objects.get(subject="M1").last_reply.startswith("554 5.6.0")
    assert subjects(chunked, 2) == ["M0", "M2"]


def test_outcomes_are_written_as_they_come_from_a_slow_server(
    chunked,
    data_hook,  # noqa: F811 (the fixture imported above)
):
    """All three go out in one write; the server answers each after FLUSH_SECONDS and
    more: each outcome is written when its reply came, not when the window is done."""
    data_hook(lambda envelope, count: asyncio.sleep(0.08))
    queue_up(3)

    with CaptureQueriesContext(connection) as queries:
        outbox.drain()

    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "CASE" in q["sql"]]
    assert len(writes) == 3
    assert statuses() == ["sent"] * 3
    assert len(reads_with(chunked, b"BDAT ")) == 1


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_421_mid_stream_ends_the_session_and_the_rest_stays_due(start_server, trust, stage):
    """``DATA`` is the hook that ``BDAT … LAST`` calls: the 421 answers the content."""
    server = start_server(pipelining=True, chunking=True, end_after=1, end_at=stage)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    queue_up(4, recipients={i: [f"a{i}@example.com", f"b{i}@example.com"] for i in range(4)})

    result = outbox.drain()

    assert statuses() == ["sent", "deferred", "deferred", "deferred"]
    assert (result.sent, result.deferred) == (1, 3)
    for row in OutboxMessage.objects.order_by("pk")[1:]:
        assert row.last_reply.startswith("421 4.7.0 Too many messages")
        assert all(entry["status"] != "sent" for entry in row.recipient_status.values())
        assert row.next_attempt_at is not None
    assert subjects(server, 1) == ["M0"]
    time.sleep(0.2)
    assert len(server.messages) == 1
    assert server.sessions == 1
    assert not server.commands[-1].upper().startswith("QUIT")  # the session had ended


def test_a_recipient_that_cannot_be_written_fails_alone(chunked):
    queue_up(3, recipients={1: ["jürgen@example.com"]})

    outbox.drain()

    assert statuses() == ["sent", "failed", "sent"]
    assert subjects(chunked, 2) == ["M0", "M2"]
    assert not any("jürgen".encode() in read for read in chunked.reads)


def test_a_server_with_pipelining_but_without_chunking_waits_for_354(start_server, trust):
    server = start_server(pipelining=True)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    queue_up(2)

    assert outbox.drain().sent == 2

    assert subjects(server, 2) == ["M0", "M1"]
    assert server.commands.count("DATA") == 2
    assert not any(command.startswith("BDAT") for command in server.commands)


def test_a_server_with_chunking_but_without_pipelining_goes_lock_step(start_server, trust):
    server = start_server(chunking=True)
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    queue_up(2)

    assert outbox.drain().sent == 2

    assert subjects(server, 2) == ["M0", "M1"]
    assert [command.upper() for command in server.commands].count("DATA") == 2
    assert reads_with(server, b"MAIL FROM:", b"RCPT TO:") == []  # one command per write


def test_the_transcript_records_bdat(chunked):
    client, transcript = session(chunked)
    message = b"Subject: T\r\n\r\nHallo\r\n"
    try:
        outcomes = list(
            chunking.send(client, [pipelining.Transaction(MAILBOX, ["t@example.com"], message)])
        )
    finally:
        transport.quit_quietly(client)

    assert [outcome for _transaction, outcome in outcomes] == [{}]
    start = transcript.index(f"C: MAIL FROM:<{MAILBOX}> size={len(message)}")
    assert transcript[start + 1 : start + 3] == [
        "C: RCPT TO:<t@example.com>",
        f"C: BDAT {len(message)} LAST",
    ]
    assert "C: Hallo" in transcript
    assert not any(line.startswith("S: 354") for line in transcript)
    assert "C: ****" in transcript  # AUTH masked as always


def test_a_connection_broken_mid_window_loses_nothing(chunked, monkeypatch):
    """The server drops the connection at the second message's content, without a
    reply: that one is deferred, the unanswered rest of the window goes back and out
    again over a new connection, each once."""
    original = smtpservers._Handler.handle_DATA

    async def handle_DATA(self, server, session, envelope):
        if b"M1" in envelope.content:
            server.transport.abort()
            return "451 never heard"
        return await original(self, server, session, envelope)

    monkeypatch.setattr(smtpservers._Handler, "handle_DATA", handle_DATA)
    queue_up(4)

    outbox.drain()

    assert statuses() == ["sent", "deferred", "sent", "sent"]
    assert OutboxMessage.objects.get(subject="M1").last_category == "connection"
    assert sorted(subjects(chunked, 3)) == ["M0", "M2", "M3"]
    time.sleep(0.2)
    assert len(chunked.messages) == 3  # none twice
    assert chunked.sessions == 2
