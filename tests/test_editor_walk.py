"""Issue 13, "Editors": what a new editor tripped over (unit level; the browser walk is
in tests/browser/test_editor_walk.py)."""

import email.policy
import re
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation
from django_q.conf import Conf
from wagtail.admin.forms.account import NameEmailForm
from wagtail.models import ModelLogEntry

from example_site import demo
from example_site.dropzone.demo_admin import ensure_admin_user
from tests.conftest import MAILBOX
from tests.utils import committed, configure, form_data, german, submit
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.admin import report
from wagtail_icarus_smtp.admin.views import edit_url
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.smtp import headers

pytestmark = pytest.mark.django_db


# -- 10. the demo admin can save its account form (and so change the admin language) ------


def test_the_demo_admin_user_has_a_first_and_a_last_name():
    user, created = ensure_admin_user()
    assert created
    assert (user.first_name, user.last_name) == (demo.ADMIN_FIRST_NAME, demo.ADMIN_LAST_NAME)
    form = NameEmailForm(
        instance=user,
        data={"first_name": user.first_name, "last_name": user.last_name, "email": user.email},
    )
    assert form.is_valid(), form.errors


def test_an_existing_demo_admin_without_names_gets_them(django_user_model):
    django_user_model.objects.create_superuser(
        demo.ADMIN_USERNAME, demo.ADMIN_EMAIL, demo.ADMIN_PASSWORD
    )
    user, created = ensure_admin_user()
    assert not created
    user.refresh_from_db()
    assert user.first_name and user.last_name


# -- 6. display names people really have ------------------------------------------------

REAL_NAMES = [
    "Fallschirmsport Musterstadt e.V., Halle 2",
    'Dropzone "Am Flugplatz"',
    "Tandem; AFF; Fun Jumps",
    "info@dropzone - Team",
    "Müller's Sprungschule",
]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_display_names_with_commas_quotes_semicolons_and_at_are_saved(name):
    form = submit(run_tasks=False, from_name=name)

    assert not form.errors, form.errors
    assert SmtpSettings.load().from_name == name


@pytest.mark.parametrize("name", REAL_NAMES)
def test_the_from_header_is_built_from_the_name_and_address_pair(name):
    lines = headers._sender_headers(MAILBOX, name, "", False)
    header = b"\r\n".join(lines) + b"\r\n\r\n"
    parsed = message_from_bytes(header, policy=email.policy.default)["From"]

    assert len(parsed.addresses) == 1
    assert parsed.addresses[0].display_name == name
    assert parsed.addresses[0].addr_spec == MAILBOX


@pytest.mark.django_db(transaction=True)
def test_a_name_with_a_comma_reaches_the_recipient_as_one_sender(server, settings):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    configure(server, from_name=REAL_NAMES[0])

    with committed():
        mail.send_mail("Buchung", "Text", None, ["kunde@example.com"])

    received = server.wait_for_messages(1)[0]
    [sender] = received.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (REAL_NAMES[0], MAILBOX)
    assert received.rcpt_tos == ["kunde@example.com"]


@pytest.mark.parametrize(
    "name",
    [
        "Dropzone\r\nBcc: victim@example.com",
        "Drop\x00zone",
        "Drop\u2028zone",
        "Drop\u202ezone",
        "=?utf-8?b?QmNjOiB4?=",
        "Dropzone <evil@example.com>",
    ],
)
def test_control_characters_line_breaks_bidi_and_encoded_words_stay_refused(name):
    form = submit(run_tasks=False, from_name=name)

    assert form.errors["from_name"]
    assert SmtpSettings.load().from_name == ""


def test_an_over_long_name_gets_a_field_error_and_the_browser_does_not_cut_it(client, smtp_editor):
    with translation.override("de"):
        form = submit(run_tasks=False, from_name="x" * 101)
        errors = form.errors["from_name"]

    assert any("100" in error for error in errors), errors
    assert SmtpSettings.load().from_name == ""
    client.force_login(smtp_editor)
    page = client.get(edit_url(SmtpSettings.load())).content.decode()
    [name_input] = re.findall(r'<input[^>]*name="from_name"[^>]*>', page)
    assert "maxlength" not in name_input


# -- 3. resend is deliberate; 2. "send now" only when it can happen -----------------------


def add_message(subject, status):
    envelope = outbox.Envelope(
        f"<{subject}@test>",
        subject,
        "",
        False,
        ["kunde@example.com"],
        f"Subject: {subject}\r\n\r\nText\r\n".encode(),
    )
    [row] = outbox.accept([envelope], held=True)
    OutboxMessage.objects.filter(pk=row.pk).update(status=status)
    return OutboxMessage.objects.get(pk=row.pk)


def outbox_url(name, pk):
    return reverse(f"wagtail_icarus_smtp_outbox:{name}", args=[pk])


def test_resend_of_a_delivered_message_asks_for_confirmation_first(client, smtp_editor, server):
    configure(server)
    row = add_message("Buchung", "sent")
    client.force_login(german(smtp_editor))

    detail = client.get(outbox_url("detail", row.pk)).content.decode()
    # "Erneut senden" is a link to a confirmation page, not a button that sends.
    assert re.search(rf'<a [^>]*href="{outbox_url("resend", row.pk)}"', detail)
    assert not re.search(rf'<form [^>]*action="{outbox_url("resend", row.pk)}"', detail)
    confirmation = client.get(outbox_url("resend", row.pk)).content.decode()
    assert "noch einmal an kunde@example.com senden?" in confirmation
    assert OutboxMessage.objects.get(pk=row.pk).status == "sent"  # the GET sends nothing

    with committed():
        refused = client.post(outbox_url("resend", row.pk), follow=True)  # not confirmed
    assert OutboxMessage.objects.get(pk=row.pk).status == "sent"
    assert "es wurde nichts versendet" in refused.content.decode()
    assert server.messages == []


def test_send_now_is_only_offered_when_sending_is_possible(client, smtp_editor, server):
    configure(server, enabled=None)  # working settings, sending switched off
    row = add_message("Gehalten", "held")
    client.force_login(german(smtp_editor))

    detail = client.get(outbox_url("detail", row.pk)).content.decode()
    assert "Jetzt senden" not in detail
    assert "Versand ist gerade nicht möglich" in detail
    answer = client.post(outbox_url("release", row.pk), follow=True).content.decode()
    assert "Die E-Mail wird jetzt versendet." not in answer
    assert "Versand ist gerade nicht möglich" in answer
    assert OutboxMessage.objects.get(pk=row.pk).status == "held"

    submit(user=smtp_editor, port=str(server.port), enabled="on")
    assert "Jetzt senden" in client.get(outbox_url("detail", row.pk)).content.decode() or (
        OutboxMessage.objects.get(pk=row.pk).status != "held"  # switching on sent it already
    )


# -- 7. small form fixes -----------------------------------------------------------------


@pytest.mark.parametrize("port", ["", "587"])
def test_a_port_typed_into_the_server_field_is_moved_to_the_port_field(port):
    form = submit(run_tasks=False, host="smtp.ionos.de:587", port=port)

    assert not form.errors, form.errors
    saved = SmtpSettings.load()
    assert (saved.host, saved.port) == ("smtp.ionos.de", 587)


def test_a_port_in_the_server_field_that_contradicts_the_port_field_is_explained():
    with translation.override("de"):
        form = submit(run_tasks=False, host="smtp.ionos.de:465", port="587")
        [error] = form.errors["host"]

    assert error == (
        "Geben Sie den Servernamen ohne „:465“ ein und den Port im Feld Port (dort steht 587)."
    )
    assert SmtpSettings.load().host == ""


def test_a_port_from_the_server_field_must_still_be_allowed():
    form = submit(run_tasks=False, host="smtp.ionos.de:25", port="")

    assert form.errors["port"]
    assert SmtpSettings.load().host == ""


def test_the_settings_menu_leads_to_the_smtp_settings(client, smtp_editor):
    """Wagtail's settings menu is one flat list (no "Allgemein" group without
    replacing Wagtail's own menu item): Einstellungen → SMTP-Einstellungen."""
    client.force_login(german(smtp_editor))

    home = client.get(reverse("wagtailadmin_home")).content.decode()

    assert "SMTP-Einstellungen" in home
    assert reverse("wagtailsettings:edit", args=["wagtail_icarus_smtp", "smtpsettings"]) in home


# -- 5. switching on/off is history ------------------------------------------------------


def test_switching_sending_off_and_on_adds_history_rows_with_who_and_when(server, smtp_editor):
    configure(server, user=smtp_editor)
    before = SmtpSettings.load().events.count()
    last_test = report.build(SmtpSettings.load())["last_test_label"]

    # The stored password is kept (empty field): only the switch changes.
    submit(user=smtp_editor, port=str(server.port), password="", enabled=None)
    submit(user=smtp_editor, port=str(server.port), password="", enabled="on")

    smtp_settings = SmtpSettings.load()
    on, off = smtp_settings.events.all()[:2]
    assert smtp_settings.events.count() == before + 2
    assert (off.kind, on.kind) == ("sending_disabled", "sending_enabled")
    assert off.triggered_by == on.triggered_by == smtp_editor
    assert smtp_settings.status == "complete"  # a switch row does not change the status
    # Nor the time of the last test (the switch rows moved a day on to tell them apart).
    smtp_settings.events.exclude(kind="").update(created_at=timezone.now() + timedelta(days=1))
    assert report.build(smtp_settings)["last_test_label"] == last_test
    with translation.override("de"):
        rows = report.build(smtp_settings)["events"]
    assert [row["kind_label"] for row in rows[:2]] == [
        "SMTP-Mailversand eingeschaltet",
        "SMTP-Mailversand ausgeschaltet",
    ]


# -- 4. the test e-mail tests what is on the page ----------------------------------------

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def send_testmail(client, to="kunde@example.org"):
    return client.post(reverse("wagtail_icarus_smtp:testmail"), {"to": to}, **XHR).json()


def test_the_test_email_uses_the_failed_draft_not_the_live_settings(server, smtp_editor, client):
    configure(server, user=smtp_editor)
    submit(user=smtp_editor, port=str(server.port), password="falsches-passwort")
    assert SmtpSettings.load().status == "failed"
    client.force_login(german(smtp_editor))

    data = send_testmail(client)

    assert data["ok"] is False
    assert data["category"] == "auth"
    assert data["configuration"] == "draft"
    assert "noch nicht" in data["configuration_label"]
    row = OutboxMessage.objects.get(is_test=True)
    assert (row.status, row.last_category, row.recipient_list) == (
        "failed",
        "auth",
        "kunde@example.org",
    )
    assert row.delivery_attempts.get().status == "failed"
    listing = client.get(reverse("wagtail_icarus_smtp_outbox:index")).content.decode()
    assert "Fehlgeschlagen (Test-E-Mail)" in listing
    detail = client.get(outbox_url("detail", row.pk)).content.decode()
    assert "Test-E-Mail" in detail
    assert outbox_url("resend", row.pk) not in detail  # a test is never re-sent


def test_the_test_email_works_while_sending_is_off_and_is_logged(server, smtp_editor, client):
    configure(server, user=smtp_editor, enabled=None)
    client.force_login(german(smtp_editor))

    data = send_testmail(client)

    assert data["ok"] is True, data
    assert data["configuration"] == "live"
    assert data["configuration_label"] == (
        "Getestet mit den Einstellungen, die für die E-Mails der Website in Gebrauch sind."
    )
    assert server.wait_for_messages(1)[0].rcpt_tos == ["kunde@example.org"]
    row = OutboxMessage.objects.get(is_test=True)
    assert (row.status, row.is_test) == ("sent", True)
    assert row.sent_via == f"{MAILBOX} @ localhost:{server.port}"
    outbox.drain()
    assert len(server.messages) == 1  # a logged test is never sent a second time


def test_the_test_email_of_a_new_setup_goes_through_the_draft(server, smtp_editor, client):
    submit(user=smtp_editor, port=str(server.port), run_tasks=False)  # untested draft
    client.force_login(smtp_editor)

    data = send_testmail(client)

    assert data["ok"] is True, data
    assert data["configuration"] == "draft"
    assert server.wait_for_messages(1)[0].rcpt_tos == ["kunde@example.org"]


# -- 1. waiting mail is visible everywhere -----------------------------------------------


def test_a_failed_first_setup_with_sending_on_says_mail_waits_everywhere(
    server, smtp_editor, client, settings
):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    submit(user=smtp_editor, port=str(server.port), password="falsch", enabled="on")
    with committed():
        mail.send_mail("Buchung 1", "Text", None, ["a@example.com"])
        mail.send_mail("Buchung 2", "Text", None, ["b@example.com"])
    client.force_login(german(smtp_editor))

    with translation.override("de"):
        state = report.build(SmtpSettings.load())
    assert state["sending_state"] == "not_live"
    assert state["sending_badge"] == "Aktiviert, aber noch kein Versand möglich · 2 warten"
    assert "2 E-Mails warten auf den Versand." in state["sending_note"]
    page = client.get(edit_url(SmtpSettings.load())).content.decode()
    assert "Aktiviert, aber noch kein Versand möglich · 2 warten" in page
    assert "icarus-smtp-sending--warn" in page
    banner = client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).json()
    assert "noch keine E-Mail versendet werden" in banner["text"]
    assert "2 E-Mails warten auf den Versand." in banner["text"]
    home = client.get(reverse("wagtailadmin_home")).content.decode()
    assert "Aktiviert, aber noch kein Versand möglich · 2 warten" in home


def test_switched_off_never_says_mail_can_be_sent(server, smtp_editor, client):
    configure(server, user=smtp_editor, enabled=None)
    client.force_login(german(smtp_editor))

    page = client.get(edit_url(SmtpSettings.load())).content.decode()

    assert "E-Mail-Versand möglich" not in page
    assert "Der Versand ist ausgeschaltet" in page
    assert "icarus-smtp-sending--off" in page


def test_working_and_switched_on_shows_no_waiting_note(server, smtp_editor, client):
    configure(server, user=smtp_editor)
    client.force_login(german(smtp_editor))

    state = report.build(SmtpSettings.load())
    assert (state["sending_state"], state["sending_note"]) == ("on", "")
    assert client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).status_code == 204


# -- 2. messages that tell the truth -----------------------------------------------------


def test_sendtest_against_an_unreachable_server_says_deferred_and_when(server, settings):
    configure(server)
    server.__exit__(None, None, None)  # the server goes away after the setup

    with pytest.raises(CommandError) as raised:
        call_command("icarus_smtp_sendtest", to="kunde@example.com")

    text = str(raised.value)
    assert "deferred" in text and "retried automatically at" in text
    assert "failed" not in text.lower()
    row = OutboxMessage.objects.get()
    assert row.status == "deferred"
    assert (
        row.next_attempt_at.astimezone(timezone.get_current_timezone()).strftime("%H:%M:%S") in text
    )


def settings_url():
    return edit_url(SmtpSettings.load())


def post_settings(client, server, **overrides):
    data = form_data(port=str(server.port), confirm_password="pw", **overrides)
    return client.post(settings_url(), data, follow=True)


def page_messages(response):
    return [str(message) for message in response.context["messages"]]


def test_saving_says_the_connection_is_being_tested(server, smtp_editor, client, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)  # queued: the test has not run yet
    client.force_login(german(smtp_editor))

    response = post_settings(client, server)

    assert page_messages(response) == ["Gespeichert \u2013 die Verbindung wird getestet."]
    assert "SMTP-Einstellungen aktualisiert." not in response.content.decode()


@pytest.mark.django_db(transaction=True)  # the sync test task runs at the commit
def test_a_failed_draft_is_marked_and_can_be_discarded(server, smtp_editor, client):
    configure(server, user=smtp_editor)
    working = SmtpSettings.load()
    client.force_login(german(smtp_editor))

    response = post_settings(client, server, host="127.0.0.1", password="falsch")

    [message] = page_messages(response)
    assert message.startswith("Als Entwurf gespeichert, aber der Verbindungstest ist fehlgeschl")
    page = response.content.decode()
    assert 'data-field="draft_tag">Entwurf \u2013 nicht in Gebrauch' in page  # shown
    discard = reverse("wagtail_icarus_smtp:discard_draft")
    assert f'href="{discard}"' in page
    confirmation = client.get(discard).content.decode()
    assert "Ja, Entwurf verwerfen" in confirmation
    assert SmtpSettings.load().host == "127.0.0.1"  # the GET changes nothing

    response = client.post(discard, follow=True)

    assert page_messages(response) == [
        "Der Entwurf wurde verworfen: Das Formular zeigt wieder die Einstellungen, "
        "die in Gebrauch sind."
    ]
    restored = SmtpSettings.load()
    assert (restored.host, restored.port, restored.email) == (
        working.host,
        working.port,
        working.email,
    )
    assert restored._password_encrypted == working.live_config._password_encrypted
    assert restored.status == "complete" and not restored.live_differs
    assert 'data-field="draft_tag" hidden>' in response.content.decode()
    assert ModelLogEntry.objects.filter(
        action="wagtail_icarus_smtp.draft_discarded", user=smtp_editor
    ).exists()


def test_discarding_without_a_draft_changes_nothing(server, smtp_editor, client):
    configure(server, user=smtp_editor)
    version = SmtpSettings.load().version
    client.force_login(german(smtp_editor))

    response = client.post(reverse("wagtail_icarus_smtp:discard_draft"), follow=True)

    assert page_messages(response) == [
        "Es gibt keinen Entwurf zum Verwerfen; es wurde nichts geändert."
    ]
    assert SmtpSettings.load().version == version


def test_only_editors_with_the_permission_may_discard(server, admin_only_user, client):
    configure(server)
    submit(port=str(server.port), password="falsch")
    client.force_login(admin_only_user)

    response = client.post(reverse("wagtail_icarus_smtp:discard_draft"), **XHR)

    assert response.status_code in (302, 403)
    assert SmtpSettings.load().status == "failed"
