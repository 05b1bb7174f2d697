"""Every view and endpoint checks the setting's change permission."""

import pytest
from django.urls import reverse

from tests.conftest import MAILBOX
from tests.utils import configure
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def endpoints():
    pk = SmtpSettings.load().pk
    return [
        ("get", reverse("wagtailsettings:edit", args=["wagtail_icarus_smtp", "smtpsettings", pk])),
        ("post", reverse("wagtailsettings:edit", args=["wagtail_icarus_smtp", "smtpsettings", pk])),
        ("get", reverse("wagtail_icarus_smtp:status")),
        ("get", reverse("wagtail_icarus_smtp:banner")),
        ("post", reverse("wagtail_icarus_smtp:testmail")),
        ("get", reverse("wagtail_icarus_smtp:deliverability")),
        ("post", reverse("wagtail_icarus_smtp:deliverability")),
        ("get", reverse("wagtail_icarus_smtp:history")),
        ("get", reverse("wagtail_icarus_smtp:history_results")),
    ]




def call(client, method, url, **extra):
    data = {"to": "x@example.com", "email": "evil@example.com", "host": "evil.example"}
    return getattr(client, method)(url, data if method == "post" else None, **extra)


def test_anonymous_users_are_sent_to_the_login_page(client, server):
    configure(server)
    for method, url in endpoints():
        response = call(client, method, url)
        assert response.status_code == 302, url
        assert "/login/" in response["Location"], url


def test_admin_users_without_the_permission_get_403_or_the_admin_redirect(
    client, admin_only_user, server
):
    configure(server)
    client.force_login(admin_only_user)
    for method, url in endpoints():
        assert call(client, method, url, **XHR).status_code == 403, url
        response = call(client, method, url)
        assert response.status_code in (302, 403), url
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.email == MAILBOX  # nothing changed
    assert smtp_settings.host == "localhost"
    assert server.messages == []  # no test e-mail went out


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
