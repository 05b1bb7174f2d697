"""One permission matrix: every view and every delivery-log action, for the users who
really exist — anonymous, an admin user without the SMTP permission, and a
non-superuser editor holding only the setting's change permission. Exact status codes."""

import pytest
from django.urls import reverse

from tests.conftest import MAILBOX
from tests.utils import XHR, configure, edit_url
from wagtail_icarus_smtp.admin.delivery_log import ACTIONS, NAMESPACE
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(server):
    configure(server)
    return OutboxMessage.objects.create(
        status="held",
        subject="Buchung",
        recipients=["kunde@example.org"],
        recipient_list="kunde@example.org",
        mime=b"Subject: Buchung\r\n\r\nHallo",
        message_id="<1@dropzone.example>",
    )


def endpoints(row):
    """``(method, url, what the SMTP editor gets)`` for every view of the package."""
    detail = reverse(f"{NAMESPACE}:detail", args=[row.pk])
    found = [
        ("get", edit_url(), 200),
        ("get", reverse("wagtail_icarus_smtp:status"), 200),
        ("get", reverse("wagtail_icarus_smtp:banner"), 204),  # nothing to say: sending on
        ("get", reverse("wagtail_icarus_smtp:deliverability"), 200),
        ("get", reverse("wagtail_icarus_smtp:history"), 200),
        ("get", reverse("wagtail_icarus_smtp:history_results"), 200),
        ("get", reverse(f"{NAMESPACE}:index"), 200),
        ("get", reverse(f"{NAMESPACE}:index_results"), 200),
        ("get", reverse(f"{NAMESPACE}:index") + "?export=csv", 200),
        ("get", detail, 200),
    ]
    # An action's page: a confirmation, or (release needs none) back to the message.
    confirm = {"release": 302, "resend": 200, "discard": 200}
    assert set(confirm) == set(ACTIONS)  # a new action joins the matrix
    found += [
        ("get", reverse(f"{NAMESPACE}:{name}", args=[row.pk]), confirm[name]) for name in ACTIONS
    ]
    # Posts last: the editor's own posts change the row (the others must not).
    found += [("post", reverse("wagtail_icarus_smtp:testmail"), 200)]
    found += [("post", reverse("wagtail_icarus_smtp:deliverability"), 202)]  # "Neu prüfen"
    found += [("post", reverse(f"{NAMESPACE}:{name}", args=[row.pk]), 302) for name in ACTIONS]
    found += [("post", edit_url(), 200)]  # a rejected form: shown again
    return found


def call(client, method, url, **extra):
    data = {"to": "x@example.com", "email": "evil@example.com", "host": "evil.example"}
    return getattr(client, method)(url, data if method == "post" else None, **extra)


def test_anonymous_users_are_sent_to_the_login_page(client, held):
    for method, url, _ in endpoints(held):
        response = call(client, method, url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("wagtailadmin_login") + "?next="), url
        assert call(client, method, url, **XHR).status_code == 403, url


def test_admin_users_without_the_permission_are_denied_everywhere(
    client, admin_only_user, held, server
):
    client.force_login(admin_only_user)
    for method, url, _ in endpoints(held):
        assert call(client, method, url, **XHR).status_code == 403, url
        response = call(client, method, url)
        assert response.status_code == 302, url  # Wagtail's denial: home with a message
        assert response["Location"] == reverse("wagtailadmin_home"), url
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.email == MAILBOX  # nothing changed
    assert smtp_settings.host == "localhost"
    assert OutboxMessage.objects.get(pk=held.pk).status == "held"  # not released
    assert server.messages == []  # no test e-mail went out


def test_the_smtp_editor_reaches_every_view(client, smtp_editor, held):
    client.force_login(smtp_editor)
    for method, url, expected in endpoints(held):
        assert call(client, method, url, **XHR).status_code == expected, url


def test_no_menu_item_banner_or_dashboard_panel_without_the_permission(
    client, admin_only_user, editor, server
):
    configure(server, enabled=None)  # sending off: the banner would show
    client.force_login(admin_only_user)

    home = client.get("/admin/").content.decode()

    assert "SMTP settings" not in home  # neither menu item nor dashboard panel
    assert "data-icarus-smtp-dashboard" not in home
    assert client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).status_code == 403

    client.force_login(editor)
    home = client.get("/admin/").content.decode()
    assert "data-icarus-smtp-dashboard" in home
    assert client.get(reverse("wagtail_icarus_smtp:banner"), **XHR).status_code == 200
