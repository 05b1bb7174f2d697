"""The delivery log in the Wagtail admin and the operator command ``icarus_smtp_outbox``."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from tests.utils import committed, configure, german
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

pytestmark = pytest.mark.django_db


def add(subject, status="held", to="kunde@example.com", **fields):
    envelope = outbox.Envelope(
        f"<{subject}@test>",
        subject,
        "shop@x.example",
        False,
        [to],
        f"Subject: {subject}\r\n\r\nText\r\n".encode(),
    )
    [row] = outbox.accept([envelope], held=True)
    OutboxMessage.objects.filter(pk=row.pk).update(status=status, **fields)
    return OutboxMessage.objects.get(pk=row.pk)


def url(name, *args):
    return reverse(f"wagtail_icarus_smtp_outbox:{name}", args=args)


def test_listing_filters_by_status_and_searches_by_recipient(client, editor):
    add("Buchung A", to="anna@example.com")
    add("Buchung B", status="sent", to="bernd@example.com")
    client.force_login(editor)

    page = client.get(url("index")).content.decode()
    assert "Buchung A" in page and "Buchung B" in page
    held = client.get(url("index"), {"status": "held"}).content.decode()
    assert "Buchung A" in held and "Buchung B" not in held
    found = client.get(url("index"), {"q": "bernd"}).content.decode()
    assert "Buchung B" in found and "Buchung A" not in found


def test_listing_filters_by_date_and_exports_a_spreadsheet(client, editor):
    add("Altmail", created_at=timezone.now() - timedelta(days=10))
    add("Neumail")
    client.force_login(editor)
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    page = client.get(url("index"), {"created_at_from": since}).content.decode()
    assert "Neumail" in page and "Altmail" not in page
    export = client.get(url("index"), {"export": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    text = export.getvalue().decode()
    assert "Message-ID" in text and "<Altmail@test>" in text
    assert client.get(url("index"), {"export": "xlsx"}).status_code == 200


def test_detail_shows_attempts_and_per_recipient_outcome(client, editor):
    row = add(
        "Drei",
        status="failed",
        recipient_status={"kunde@example.com": {"status": "failed", "reply": "550 5.1.1 nope"}},
    )
    row.delivery_attempts.create(status="failed", reply="550 5.1.1 nope")
    client.force_login(editor)

    page = client.get(url("detail", row.pk)).content.decode()

    assert "550 5.1.1 nope" in page
    assert "&lt;Drei@test&gt;" in page
    assert "kunde@example.com — Failed" in page  # the outcome in words, not "failed"


def test_labels_are_words_in_the_editors_language(client, editor):
    row = add("Vier", status="failed", last_category="sender_rejected")
    client.force_login(german(editor))

    listing = client.get(url("index")).content.decode()
    assert "Fehlgeschlagen" in listing
    assert "sender_rejected" not in listing  # the category's label, not its machine value
    assert "1 ausgehende E-Mail" in listing
    detail = client.get(url("detail", row.pk)).content.decode()
    assert "Versandprotokoll" in detail  # the way back, in the breadcrumbs
    assert "<title>Versandprotokoll: Vier" in detail


def test_release_resend_and_discard_with_confirmation_and_audit(client, editor, server):
    configure(server, enabled=None)  # a working configuration, sending switched off
    held = add("Gehalten")
    failed = add("Fehlgeschlagen", status="failed")
    later = timezone.now() + timedelta(hours=1)
    waiting = add("Verwerfen", status="deferred", next_attempt_at=later)
    client.force_login(editor)

    resend = client.get(url("resend", failed.pk)).content.decode()
    server_name = f"system@dropzone.example @ localhost:{server.port}"
    assert f"Yes, send it through {server_name}" in resend
    with committed():
        client.post(url("release", held.pk))
        client.post(url("resend", failed.pk), {"server": server_name})
    confirm = client.get(url("discard", waiting.pk))
    assert "Yes, discard" in confirm.content.decode()
    assert OutboxMessage.objects.get(pk=waiting.pk).status == "deferred"  # GET changes nothing
    client.post(url("discard", waiting.pk))

    # Sending is off: released mail is held again by the drain.
    assert OutboxMessage.objects.get(pk=held.pk).status == "held"
    assert OutboxMessage.objects.get(pk=failed.pk).status == "held"
    discarded = OutboxMessage.objects.get(pk=waiting.pk)
    assert (discarded.status, discarded.mime) == ("failed", None)
    assert "Discarded by editor" in discarded.last_reply
    actions = set(ModelLogEntry.objects.values_list("action", flat=True))
    assert {
        "wagtail_icarus_smtp.outbox_released",
        "wagtail_icarus_smtp.outbox_resent",
        "wagtail_icarus_smtp.outbox_discarded",
    } <= actions
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.outbox_discarded")
    assert entry.data["message_id"] == "<Verwerfen@test>"
    assert entry.user == editor


def test_release_delivers_when_sending_is_on(client, smtp_editor, server):
    configure(server)
    row = add("Los")
    client.force_login(smtp_editor)

    with committed():
        client.post(url("release", row.pk))

    assert server.wait_for_messages(1)[0].message["Subject"] == "Los"


def test_users_without_the_settings_permission_see_nothing(client, admin_only_user):
    row = add("Geheim")
    client.force_login(admin_only_user)

    for target in (url("index"), url("detail", row.pk)):
        assert client.get(target).status_code == 302  # Wagtail's denial: home, a message
        assert client.get(target, HTTP_X_REQUESTED_WITH="XMLHttpRequest").status_code == 403
    client.post(url("discard", row.pk))
    assert OutboxMessage.objects.get(pk=row.pk).status == "held"
    menu = client.get(reverse("wagtailadmin_home")).content.decode()
    assert "Delivery log" not in menu


def test_summary_counts_and_oldest_age():
    add("Eins", created_at=timezone.now() - timedelta(hours=2))
    add("Zwei", status="deferred")
    add("Drei", status="sent")

    summary = outbox.summary()

    assert (summary["held"], summary["deferred"], summary["counts"]["sent"]) == (1, 1, 1)
    assert 7190 <= summary["oldest_age_seconds"] <= 7300


def test_outbox_command_counts_releases_retries_and_purges(capsys, settings):
    add("Eins")
    add("Zwei", status="failed")
    add("Alt", status="sent", created_at=timezone.now() - timedelta(days=8))

    call_command("icarus_smtp_outbox")
    out = capsys.readouterr().out
    assert "held      1" in out and "failed    1" in out
    assert "Oldest waiting message" in out

    call_command("icarus_smtp_outbox", "--release", "--retry-failed", "--purge-bodies")
    out = capsys.readouterr().out
    assert "Released 1 message(s)." in out
    assert "Queued 1 failed message(s) again." in out
    assert "Deleted 1 message bodies" in out
    assert OutboxMessage.objects.get(subject="Alt").mime is None
    assert SmtpSettings.objects.count() == 0  # the command creates no settings
