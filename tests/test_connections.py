"""Several connections for a big backlog: a drain opens at most
``ICARUS_SMTP_OUTBOX_CONNECTIONS`` at once (other workers' count), each claiming its own
rows; a small backlog keeps one connection."""

import asyncio
import dataclasses
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import smtpservers
from tests.utils import configure, numbered_envelopes
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.outbox import leases

pytestmark = pytest.mark.django_db(transaction=True)  # the connections see committed rows


@pytest.fixture
def queued(server):
    """A working live configuration and ``count`` queued messages."""
    configure(server, enabled=None)

    def make(count):
        outbox.accept(numbered_envelopes(count), held=False)
        SmtpSettings.objects.update(enabled=True)

    return make


@pytest.fixture
def slow_data(monkeypatch):
    """Every DATA takes a while: batches overlap when they run at once."""
    original = smtpservers._Handler.handle_DATA

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.01)
        return await original(self, server, session, envelope)

    monkeypatch.setattr(smtpservers._Handler, "handle_DATA", handle_DATA)


def received_once(server, count):
    ids = Counter(m.message["Message-ID"] for m in server.wait_for_messages(count))
    return ids == Counter({f"<m{i}@test>": 1 for i in range(count)})


def test_a_big_backlog_goes_out_over_two_connections_each_message_once(
    server, queued, settings, slow_data
):
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 20
    queued(120)

    result = outbox.drain()

    assert result.sent == 120
    assert received_once(server, 120)
    assert server.most_sessions_at_once == 2  # the default maximum, reached and kept
    assert not OutboxMessage.objects.exclude(status="sent").exists()


def test_the_maximum_is_a_setting(server, queued, settings, slow_data):
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 10
    settings.ICARUS_SMTP_OUTBOX_CONNECTIONS = 3
    queued(90)

    assert outbox.drain().sent == 90

    assert received_once(server, 90)
    assert server.most_sessions_at_once == 3


def test_one_batch_of_mail_keeps_one_connection(server, queued, settings):
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 20
    queued(20)
    sessions = server.sessions  # the connection test of the setup

    assert outbox.drain().sent == 20
    assert server.sessions == sessions + 1


def test_connections_of_other_workers_count(server, queued, settings):
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 10
    queued(50)
    rows, _token = leases.claim(limit=10)  # another worker is sending a batch right now
    assert len(rows) == 10

    assert leases.connections_wanted(10, 2) == (0, 10, None)  # it and this drain make two
    assert leases.connections_wanted(10, 3) == (1, 10, 40)  # 40 due (up to 40 counted)

    OutboxMessage.objects.filter(status="sending").update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    # A lease that ran out holds nothing; more rows are due than were counted (40).
    assert leases.connections_wanted(10, 2) == (1, 10, None)


def test_less_than_a_batch_is_shared_by_two_connections(server, queued, slow_data):
    """A hundred messages are less than one batch (500), but at a round trip of 20 ms
    two connections send them in half the time."""
    queued(100)

    assert outbox.drain().sent == 100

    assert received_once(server, 100)
    assert server.most_sessions_at_once == 2


def test_a_few_messages_keep_one_connection(server, queued, slow_data):
    queued(leases.CONNECTION_SHARE + 5)  # not enough for a second one
    sessions = server.sessions

    assert outbox.drain().sent == leases.CONNECTION_SHARE + 5
    assert server.sessions == sessions + 1


def test_a_backlog_of_large_messages_keeps_one_connection(server, queued, settings):
    """Attachments: the bandwidth limits them, not round trips, and each further
    connection would hold messages in memory of its own."""
    settings.ICARUS_SMTP_OUTBOX_BATCH_SIZE = 10  # ``queued`` has configured sending (off)
    line = b"x" * 76 + b"\r\n"
    attachment = line * (leases.LARGE_MESSAGE // len(line) + 1)
    envelopes = [
        dataclasses.replace(envelope, mime=envelope.mime + attachment)
        for envelope in numbered_envelopes(40)
    ]
    outbox.accept(envelopes, held=False)
    SmtpSettings.objects.update(enabled=True)
    assert leases.connections_wanted(10, 2) == (0, 10, 40)

    assert outbox.drain().sent == 40

    assert received_once(server, 40)
    assert server.most_sessions_at_once == 1
