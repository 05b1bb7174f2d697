"""The settings page as an editor sees it: red frames, presets, switch, test e-mail,
history, banner, dashboard — and nothing of it for users without the permission."""

import base64
import json
import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests.conftest import MAILBOX, PASSWORD
from tests.utils import XHR, configure, edit_url, german, submit
from wagtail_icarus_smtp import providers
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db

MISSING_DE = "Pflichtfeld \N{EN DASH} bitte ausfüllen."

B64 = base64.b64encode(PASSWORD.encode()).decode()


def input_tag(page, name):
    return re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page).group(0)


@pytest.fixture
def smtp_editor(django_user_model):
    """Not a superuser: admin access plus the setting's change permission only."""
    user = django_user_model.objects.create_user("smtp-editor", "se@example.com", "pw")
    group = Group.objects.create(name="SMTP editors")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="change_smtpsettings"),
    )
    user.groups.add(group)
    return user


# -- red frames ------------------------------------------------------------------------


def test_partially_saved_page_frames_missing_fields_red_on_first_load(editor, client):
    submit(password="", host="")  # saved: email and port only
    client.force_login(german(editor))

    page = client.get(edit_url()).content.decode()

    for name in ("password", "host"):
        tag = input_tag(page, name)
        assert 'aria-invalid="true"' in tag
        described_by = re.search(r'aria-describedby="([^"]*)"', tag).group(1).split()
        error_id = next(part for part in described_by if part.endswith("-errors"))
        errors = page[page.index(f'id="{error_id}"') - 200 : page.index(f'id="{error_id}"') + 400]
        assert "w-field--error" in errors
        assert MISSING_DE in errors
    assert 'aria-invalid="true"' not in input_tag(page, "email")
    assert page.count(MISSING_DE) == 2


def test_complete_page_has_no_red_frames(server, editor, client):
    configure(server)
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()

    assert 'aria-invalid="true"' not in page
    assert "Required field" not in page


def test_real_errors_win_over_the_missing_marker(editor, client):
    client.force_login(editor)
    SmtpSettings.load()

    response = client.post(
        edit_url(),
        {"email": "keine-adresse", "password": "", "host": "", "port": "587", "from_name": ""},
    )
    page = response.content.decode()

    assert "valid email" in page
    assert 'aria-invalid="true"' in input_tag(page, "email")
    assert 'aria-invalid="true"' in input_tag(page, "host")
    assert page.count("Required field — please fill in.") == 2  # password, host
    assert SmtpSettings.load().email == ""  # nothing saved


# -- presets ---------------------------------------------------------------------------


def test_presets_are_rendered_as_json_for_the_page(editor, client):
    client.force_login(german(editor))

    page = client.get(edit_url()).content.decode()

    data = json.loads(
        re.search(
            r'<script id="icarus-smtp-providers" type="application/json">(.*?)</script>', page, re.S
        ).group(1)
    )
    assert data["ionos"]["fields"]["host"] == "smtp.ionos.de"
    assert data["gmail"]["fields"]["port"] == 587
    assert "googlemail.com" in data["gmail"]["domains"]
    assert "App-Passwort" in data["gmail"]["hint"]
    assert "Ende Dezember 2026" in data["microsoft365"]["hint"]
    assert "Absender" in data["ionos"]["hint"]
    for label in (
        "IONOS / 1&amp;1",
        "Strato",
        "All-Inkl",
        "Gmail",
        "Microsoft 365",
        "Anderer Anbieter",
    ):
        assert label in page


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("info@gmail.com", "gmail"),
        ("a@GoogleMail.com", "gmail"),
        ("x@1und1.de", "ionos"),
        ("x@online.de", "ionos"),
        ("x@strato.de", "strato"),
        ("x@hotmail.com", "microsoft365"),
        ("system@dropzone.de", ""),
    ],
)
def test_the_provider_is_suggested_from_the_domain(email, key):
    assert providers.suggest(email) == key


def test_a_preset_fills_server_and_port_without_javascript(settings):
    settings.ICARUS_SMTP_ALLOWED_HOSTS = []

    form = submit(provider="strato", host="", port="", password="")

    assert not form.errors, form.errors
    smtp_settings = SmtpSettings.load()
    assert (smtp_settings.host, smtp_settings.port) == ("smtp.strato.de", 587)


def test_the_saved_server_selects_its_provider(editor, client):
    SmtpSettings.objects.update_or_create(defaults={"host": "smtp.gmail.com"})
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()

    assert re.search(r'<option value="gmail" selected>', page)
    assert "app password" in page


# -- switch ----------------------------------------------------------------------------


def test_switch_uses_the_seed_wording_and_warns_while_off(editor, client):
    client.force_login(german(editor))

    page = client.get(edit_url()).content.decode()

    assert 'class="switch"' in page
    assert "SMTP-Mailversand" in page
    assert "Aktiviert (Ein)" in page
    assert "Deaktiviert (Aus)" in page
    warning = re.search(r"<div[^>]*data-icarus-switch-warning[^>]*>", page).group(0)
    assert "hidden" not in warning
    assert "erhalten Kunden keine Buchungsbestätigungen" in page


# -- status bar ------------------------------------------------------------------------


def test_status_bar_shows_state_icon_sending_and_last_test(server, editor, client):
    configure(server)
    client.force_login(german(editor))

    page = client.get(edit_url()).content.decode()

    start, end = page.index("data-icarus-smtp-status"), page.index("icarus-smtp-status__meta")
    bar = page[start - 100 : end + 400]
    assert "icarus-smtp-status--complete" in bar
    assert "#icon-success" in bar
    assert "Einrichtung abgeschlossen" in bar
    assert "SMTP-Mailversand:" in bar and "Aktiviert" in bar
    assert re.search(r"Letzter Test am \d\d\.\d\d\.\d{4} \d\d:\d\d", bar)


def test_json_status_carries_what_the_bar_shows(server, editor, client):
    configure(server)
    client.force_login(editor)

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()

    assert data["icon"] == "success"
    assert data["enabled_label"] == "Enabled"
    assert data["last_test_label"].startswith("Last test ")
    assert data["missing_labels"] == []


def test_a_partial_draft_after_working_settings_says_mail_still_flows(server, editor, client):
    configure(server)
    submit(port=str(server.port), host="", password="")
    client.force_login(editor)

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()

    assert data["status"] == "started"
    assert "still being sent with the last working settings" in data["live_note"]


# -- test e-mail -----------------------------------------------------------------------


def send_testmail(client, to, **extra):
    return client.post(reverse("wagtail_icarus_smtp:testmail"), {"to": to}, **extra)


def test_test_email_is_sent_through_the_live_configuration_with_a_masked_transcript(
    server, smtp_editor, client
):
    configure(server)
    client.force_login(smtp_editor)

    response = send_testmail(client, "kunde@example.org", **XHR)

    data = response.json()
    assert response.status_code == 200
    assert data["ok"] is True
    assert data["recipient"] == "kunde@example.org"
    assert "C: STARTTLS" in data["transcript"]
    assert "S: 235" in data["transcript"]
    assert "(credentials masked)" in data["transcript"]
    assert "S: 354 " in data["transcript"]  # DATA's reply as a line, not smtplib's tuple
    assert "S: (" not in data["transcript"]
    assert data["transcript"].startswith("S: 220")  # the greeting is recorded too
    assert PASSWORD not in response.content.decode()
    assert B64 not in response.content.decode()
    received = server.wait_for_messages(1)[0]
    assert received.rcpt_tos == ["kunde@example.org"]
    assert received.message["From"] == f"Dropzone Musterstadt <{MAILBOX}>"


def test_test_email_failure_is_explained(server, editor, client):
    configure(server)
    server.users[MAILBOX] = "changed-at-the-provider"
    client.force_login(german(editor))

    data = send_testmail(client, "kunde@example.org", **XHR).json()

    assert data["ok"] is False
    assert data["category"] == "auth"
    assert data["category_label"] == "Authentifizierung fehlgeschlagen"
    assert data["reply"].startswith("535")
    assert PASSWORD not in json.dumps(data)


def test_test_email_needs_complete_settings_and_works_while_sending_is_off(server, editor, client):
    """Issue 13: the test e-mail tests what is on the page, also while sending is off."""
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()
    data = send_testmail(client, "kunde@example.org", **XHR).json()

    assert "Fill in all required fields first" in page
    assert data["ok"] is False
    assert "Fill in all required fields first" in data["message"]
    assert server.messages == []
    configure(server, enabled=None)
    assert send_testmail(client, "kunde@example.org", **XHR).json()["ok"] is True
    assert server.wait_for_messages(1)[0].rcpt_tos == ["kunde@example.org"]


def test_test_email_defaults_to_the_editors_own_address(editor, client):
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()

    assert re.search(
        r'<input type="email" id="icarus-testmail-to" value="editor@example.com"', page
    )


@pytest.mark.parametrize(
    "to",
    ["", "keine-adresse", "a@example.org, b@example.org", "a@example.org\r\nBcc: x@example.org"],
)
def test_test_email_rejects_anything_but_one_address(server, smtp_editor, client, to):
    configure(server)
    client.force_login(smtp_editor)

    response = send_testmail(client, to, **XHR)

    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert server.messages == []


def test_test_email_is_rate_limited(server, smtp_editor, client, settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (10, 30, 600), "testmail": (1, 20, 600)}
    configure(server)
    client.force_login(smtp_editor)

    assert send_testmail(client, "kunde@example.org", **XHR).status_code == 200
    response = send_testmail(client, "kunde@example.org", **XHR)

    assert response.status_code == 429
    assert "Too many attempts" in response.json()["message"]
    assert len(server.messages) == 1


def test_test_email_is_post_only_and_csrf_protected(server, smtp_editor):
    from django.test import Client

    configure(server)
    client = Client(enforce_csrf_checks=True)
    client.force_login(smtp_editor)

    assert client.get(reverse("wagtail_icarus_smtp:testmail"), **XHR).status_code == 405
    assert send_testmail(client, "kunde@example.org", **XHR).status_code == 403
    assert server.messages == []


def test_test_email_without_javascript_redirects_with_a_message(server, editor, client):
    configure(server)
    client.force_login(editor)

    response = send_testmail(client, "kunde@example.org", follow=True)

    assert response.redirect_chain[-1][0] == edit_url()
    assert "The test e-mail was sent to kunde@example.org." in response.content.decode()


# -- history ---------------------------------------------------------------------------


def test_history_view_lists_filters_and_paginates(server, editor, client, settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (100, 100, 600), "testmail": (5, 20, 600)}
    configure(server, user=editor)
    for attempt in range(14):
        submit(user=editor, port=str(server.port), password=f"falsch-{attempt}")
    client.force_login(german(editor))
    url = reverse("wagtail_icarus_smtp:history")

    page = client.get(url).content.decode()
    failed = client.get(url, {"status": "failed"}).content.decode()
    second = client.get(url, {"p": 2}).content.decode()

    assert "SMTP-Statusverlauf" in page
    assert "Einrichtung fehlgeschlagen" in page
    assert "Authentifizierung fehlgeschlagen" in page
    assert "535 5.7.8" in page
    assert "redakteurin" not in page and "editor" in page
    assert "icarus-smtp-tag--complete" not in failed
    assert failed.count("icarus-smtp-tag--failed") == 14
    assert "icarus-smtp-tag--complete" in second  # the oldest rows are on page 2
    assert PASSWORD not in page


def test_settings_page_links_to_the_full_history(server, editor, client):
    configure(server)
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()

    assert reverse("wagtail_icarus_smtp:history") in page
    assert "icarus-smtp-tag--complete" in page


# -- banner and dashboard --------------------------------------------------------------


def test_banner_only_while_sending_is_off(server, editor, client):
    client.force_login(german(editor))
    url = reverse("wagtail_icarus_smtp:banner")

    configure(server, enabled=None)
    paused = client.get(url, **XHR)
    configure(server)
    running = client.get(url, **XHR)

    assert paused.status_code == 200
    assert "SMTP-Mailversand ist ausgeschaltet" in paused.json()["text"]
    assert "Die E-Mails werden aufbewahrt" in paused.json()["text"]  # nothing is lost
    assert paused.json()["url"] == edit_url()
    assert running.status_code == 204


def test_every_admin_page_loads_the_banner_script(editor, client):
    client.force_login(editor)

    page = client.get(reverse("wagtailadmin_home")).content.decode()

    assert "wagtail_icarus_smtp/js/banner.js" in page
    assert reverse("wagtail_icarus_smtp:banner") in page


def test_dashboard_panel_shows_the_state_and_links_to_the_settings(server, editor, client):
    configure(server)
    client.force_login(german(editor))

    page = client.get(reverse("wagtailadmin_home")).content.decode()

    assert 'id="icarus-smtp-status-section"' in page
    assert "Einrichtung abgeschlossen" in page
    assert "SMTP-Einstellungen öffnen" in page
    assert edit_url() in page


def test_a_user_with_only_the_change_permission_gets_everything(smtp_editor, client):
    client.force_login(smtp_editor)

    assert client.get(edit_url()).status_code == 200
    assert client.get(reverse("wagtail_icarus_smtp:history")).status_code == 200
    assert client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).status_code == 200
    assert "icarus-smtp-status-section" in client.get(reverse("wagtailadmin_home")).content.decode()


# -- permissions -----------------------------------------------------------------------


ENDPOINTS = [
    ("get", "wagtail_icarus_smtp:status"),
    ("get", "wagtail_icarus_smtp:banner"),
    ("get", "wagtail_icarus_smtp:history"),
    ("get", "wagtail_icarus_smtp:history_results"),
    ("post", "wagtail_icarus_smtp:testmail"),
]


@pytest.mark.parametrize(("method", "name"), ENDPOINTS)
def test_without_permission_every_endpoint_is_403_for_xhr(
    client, admin_only_user, server, method, name
):
    configure(server)
    client.force_login(admin_only_user)

    response = getattr(client, method)(reverse(name), {"to": "a@example.org"}, **XHR)

    assert response.status_code == 403
    assert server.messages == []


@pytest.mark.parametrize(("method", "name"), ENDPOINTS)
def test_without_permission_every_endpoint_redirects_to_the_admin(
    client, admin_only_user, method, name
):
    client.force_login(admin_only_user)

    response = getattr(client, method)(reverse(name), {"to": "a@example.org"})

    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailadmin_home")


def test_without_permission_no_menu_item_no_panel_no_settings_page(client, admin_only_user):
    client.force_login(admin_only_user)

    home = client.get(reverse("wagtailadmin_home")).content.decode()
    settings_page = client.get(edit_url())

    assert "icarus-smtp-status-section" not in home
    assert "smtpsettings" not in home  # no menu item
    assert settings_page.status_code == 302


@pytest.mark.parametrize(("method", "name"), ENDPOINTS)
def test_anonymous_users_are_sent_to_the_login(client, method, name):
    response = getattr(client, method)(reverse(name), {"to": "a@example.org"})

    assert response.status_code == 302
    assert "/login/" in response["Location"]
