"""The status is computed once per request: the JSON poll reads four rows of ours and
decrypts the password at most once; the edit page stays within a fixed query budget."""

import pytest
from django.urls import reverse

from tests.utils import edit_url
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.smtp import crypto

pytestmark = pytest.mark.django_db

#: Django's session and user, Wagtail's user profile: every admin request reads them.
REQUEST_BASE = 3
#: A non-superuser also reads its permissions (user and group permissions).
PERMISSIONS = 2
#: The edit page's queries for a superuser: the panels read the stored settings once,
#: with the live configuration and the deliverability report (``admin/stored``).
EDIT_PAGE = 12


@pytest.fixture
def configured():
    smtp_settings = SmtpSettings.load()
    smtp_settings.email = "info@example.com"
    smtp_settings.host = "smtp.example.com"
    smtp_settings.port = 587
    smtp_settings._password_encrypted = crypto.encrypt("secret-pw")
    smtp_settings.save()
    for _ in range(3):
        smtp_settings.record("running")
    return smtp_settings


@pytest.fixture
def decrypts(monkeypatch):
    calls = []
    real = crypto.decrypt
    monkeypatch.setattr(crypto, "decrypt", lambda value: calls.append(value) or real(value))
    return calls


def test_the_status_poll_reads_four_rows_of_ours_and_decrypts_once(
    client, smtp_editor, configured, decrypts, django_assert_num_queries
):
    client.force_login(smtp_editor)
    client.get(reverse("wagtail_icarus_smtp:status"))  # warm the permission caches
    decrypts.clear()
    # settings (+ live), recent events, outbox summary, alerts
    with django_assert_num_queries(REQUEST_BASE + PERMISSIONS + 4):
        response = client.get(reverse("wagtail_icarus_smtp:status"))
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert len(response.json()["events"]) == 3
    assert len(decrypts) <= 1


def test_the_superuser_status_poll_is_session_user_and_four_rows(
    client, editor, configured, django_assert_num_queries
):
    client.force_login(editor)
    with django_assert_num_queries(REQUEST_BASE + 4):
        assert client.get(reverse("wagtail_icarus_smtp:status")).status_code == 200


def test_the_edit_page_builds_the_report_once(
    client, editor, configured, decrypts, django_assert_max_num_queries
):
    client.force_login(editor)
    url = edit_url()
    client.get(url)
    decrypts.clear()
    with django_assert_max_num_queries(EDIT_PAGE):
        response = client.get(url)
    assert response.status_code == 200
    assert b"info@example.com" in response.content
    assert len(decrypts) <= 2  # the status and the test e-mail's availability


def test_the_edit_page_for_the_smtp_editor(
    client, smtp_editor, configured, django_assert_max_num_queries
):
    client.force_login(smtp_editor)
    url = edit_url()
    client.get(url)
    with django_assert_max_num_queries(EDIT_PAGE + PERMISSIONS):
        assert client.get(url).status_code == 200
