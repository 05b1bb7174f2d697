"""Audit rows in Wagtail's log and rate limits for actions that connect out."""

import pytest
from django.core.management import call_command
from wagtail.models import ModelLogEntry

from tests.conftest import MAILBOX, PASSWORD
from tests.utils import configure, submit
from wagtail_icarus_smtp.admin import ratelimit
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db


def actions():
    return list(
        ModelLogEntry.objects.filter(action__startswith="wagtail_icarus_smtp.")
        .order_by("timestamp", "pk")
        .values_list("action", flat=True)
    )


def test_saving_and_testing_are_logged_with_user_and_fields(server, editor):
    configure(server, user=editor)

    assert actions() == [
        "wagtail_icarus_smtp.test_started",
        "wagtail_icarus_smtp.credentials_changed",
        "wagtail_icarus_smtp.sending_enabled",
        "wagtail_icarus_smtp.test_succeeded",  # the task runs after the save commits
        "wagtail_icarus_smtp.target_change_notified",  # the superusers, through the new server
    ]
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.credentials_changed")
    assert entry.user == editor
    assert entry.data["fields"] == ["email", "password", "host", "port"]
    assert entry.data["old"] == {"host": None, "port": 587, "email": None}
    assert entry.data["new"] == {"host": "localhost", "port": server.port, "email": MAILBOX}
    assert entry.timestamp is not None


def test_failures_disable_rotate_and_scrub_are_logged_without_values(server, editor):
    ciphertext = configure(server, user=editor)._password_encrypted
    submit(user=editor, port=str(server.port), password="falsch", enabled=None)
    call_command("icarus_smtp_rotate_key")
    call_command("icarus_smtp_scrub", interactive=False)

    logged = actions()
    for action in ("test_failed", "sending_disabled", "key_rotated", "scrubbed"):
        assert f"wagtail_icarus_smtp.{action}" in logged
    failed = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.test_failed")
    assert failed.data["category"] == "auth"
    everything = repr(list(ModelLogEntry.objects.values()))
    assert PASSWORD not in everything
    assert "falsch" not in everything
    assert ciphertext not in everything


def test_log_entries_show_in_wagtails_site_history(server, editor, client):
    configure(server, user=editor)
    client.force_login(editor)

    page = client.get("/admin/reports/site-history/").content.decode()

    assert "SMTP access data changed" in page
    assert "SMTP connection test succeeded" in page


def test_connection_tests_are_rate_limited_per_user(server, editor, settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (2, 100, 600), "testmail": (5, 20, 600)}
    configure(server, user=editor)
    configure(server, user=editor, password=PASSWORD + "-2")
    attempts = server.auth_attempts

    form = submit(user=editor, port=str(server.port), password=PASSWORD + "-3")

    assert "Too many attempts" in " ".join(form.non_field_errors())
    assert server.auth_attempts == attempts  # no test was queued or run
    assert SmtpSettings.load().version == 2


def test_the_site_wide_limit_holds_across_users(editor, django_user_model, settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (5, 2, 600), "testmail": (5, 20, 600)}
    other = django_user_model.objects.create_superuser("other", "o@example.com", "pw")
    ratelimit.hit("test", editor)
    ratelimit.hit("test", other)

    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("test", other)


def test_a_wrong_password_is_tried_once_and_never_retried(server):
    """The task records the failure instead of raising: django-q2 has nothing to retry."""
    from django_q.models import Task

    submit(port=str(server.port), password="falsch")

    assert server.auth_attempts == 1
    task = Task.objects.get()
    assert task.success is True
    assert task.attempt_count == 1


def test_test_emails_are_logged_with_the_recipient(server, editor, client):
    from django.urls import reverse

    configure(server, user=editor)
    client.force_login(editor)

    client.post(
        reverse("wagtail_icarus_smtp:testmail"),
        {"to": "kunde@example.com"},
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )

    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.test_email_sent")
    assert entry.user == editor
    assert entry.data["recipient"] == "kunde@example.com"
