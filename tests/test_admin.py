"""The settings page, its JSON status and who may see them."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.utils import XHR, configure, german, submit
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db


def status_url():
    return reverse("wagtail_icarus_smtp:status")


def test_json_status_reports_state_without_secrets(server, editor, client):
    configure(server, user=editor)
    client.force_login(editor)

    data = client.get(status_url(), **XHR).json()

    assert data["status"] == "complete"
    assert data["status_label"] == "Setup complete"
    assert data["final"] is True
    assert data["enabled"] is True
    assert data["events"][0]["status"] == "complete"
    assert data["events"][0]["triggered_by"] == "editor"
    assert data["live"] is True


def test_json_status_is_forbidden_without_change_permission(client, admin_only_user):
    client.force_login(admin_only_user)

    assert client.get(status_url(), **XHR).status_code == 403


def test_json_status_redirects_anonymous_users_to_login(client):
    response = client.get(status_url())

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_failed_draft_page_says_mail_still_flows_with_last_good_settings(server, editor, client):
    configure(server)
    submit(port=str(server.port), password="falsch")
    client.force_login(editor)

    page = client.get(
        reverse(
            "wagtailsettings:edit",
            args=["wagtail_icarus_smtp", "smtpsettings", SmtpSettings.load().pk],
        )
    ).content.decode()

    assert "Setup failed" in page
    assert "Authentication failed" in page
    assert "still being sent with the last working settings" in page
    assert "wagtail_icarus_smtp/js/status.js" in page
    assert 'data-icarus-smtp-status-final-value="true"' in page


def test_german_admin_shows_german_status(server, editor, client):
    configure(server)
    client.force_login(german(editor))

    data = client.get(status_url(), **XHR).json()
    page = client.get(
        reverse(
            "wagtailsettings:edit",
            args=["wagtail_icarus_smtp", "smtpsettings", SmtpSettings.load().pk],
        )
    ).content.decode()

    assert data["status_label"] == "Einrichtung abgeschlossen"
    assert "SMTP-Einstellungen" in page
    assert "SMTP-Mailversand" in page


def test_a_stale_running_test_is_explained(server, editor, client, settings):
    submit(port=str(server.port), run_tasks=False)  # queued, but no worker picks it up
    smtp_settings = SmtpSettings.load()
    event = smtp_settings.current_event
    event.created_at = timezone.now() - timedelta(minutes=10)
    event.save()
    client.force_login(editor)

    data = client.get(status_url(), **XHR).json()

    assert data["status"] == "running"
    assert data["stale"] is True
    assert "qcluster" in data["stale_hint"]


def test_a_fresh_running_test_is_not_stale(server):
    submit(port=str(server.port), run_tasks=False)
    smtp_settings = SmtpSettings.load()

    assert smtp_settings.status == "running"
    assert smtp_settings.is_stale is False
