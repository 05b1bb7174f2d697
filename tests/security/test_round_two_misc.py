"""Security round two (issue 8): scrub, rate limits across processes, the alert
webhook, and the delivery log's export."""

import io

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command
from wagtail.models import ModelLogEntry

from tests.utils import committed, configure
from wagtail_icarus_smtp import tasks
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import OutboxMessage

pytestmark = pytest.mark.django_db


def send(subject, body="x"):
    with committed():
        EmailBackend().send_messages([EmailMessage(subject, body, None, ["kunde@example.com"])])


# -- scrub empties the outbox ------------------------------------------------------------


@pytest.fixture
def production_outbox(server):
    """A copy of production: one sent message, four waiting (held, deferred, queued,
    sending) — one of them a password-reset link for a real customer."""
    configure(server)
    send("Buchung bestätigt")
    configure(server, enabled=None)  # sending off: what follows is held
    for subject in ("Passwort zurücksetzen", "Deferred", "Queued", "Sending"):
        send(subject, body="https://dropzone.example/reset/MQ/secret-token/")
    for status in ("deferred", "queued", "sending"):
        OutboxMessage.objects.filter(subject=status.title()).update(status=status)
    assert OutboxMessage.objects.filter(mime__isnull=False).count() == 5
    server.clear()
    return server


def test_scrub_discards_waiting_mail_so_staging_sends_none_of_it(production_outbox):
    out = io.StringIO()

    call_command("icarus_smtp_scrub", interactive=False, stdout=out)
    configure(production_outbox)  # staging gets its own working mailbox
    tasks.deliver_outbox()

    assert production_outbox.messages == []
    statuses = dict(OutboxMessage.objects.values_list("subject", "status"))
    assert statuses == {
        "Buchung bestätigt": "sent",
        "Passwort zurücksetzen": "failed",
        "Deferred": "failed",
        "Queued": "failed",
        "Sending": "failed",
    }
    assert not OutboxMessage.objects.filter(mime__isnull=False).exists()
    assert "Discarded 4 waiting message(s); deleted 5 stored message bodies." in out.getvalue()
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.scrubbed")
    assert (entry.data["discarded"], entry.data["bodies_deleted"]) == (4, 5)


def test_scrub_keep_outbox_only_removes_the_credentials(production_outbox):
    call_command("icarus_smtp_scrub", "--keep-outbox", interactive=False, stdout=io.StringIO())

    assert OutboxMessage.objects.filter(status="held").count() == 1
    assert OutboxMessage.objects.filter(mime__isnull=False).count() == 5
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.scrubbed")
    assert "discarded" not in entry.data
