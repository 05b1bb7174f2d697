"""The connection test against real local TLS servers: form → draft → task → live."""

import time

import pytest
from django.core import mail

from tests import smtpservers
from tests.conftest import MAILBOX, PASSWORD
from tests.utils import committed, configure, submit
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.setup import live

pytestmark = pytest.mark.django_db


def test_starttls_and_auth_succeed_and_promote(server, smtp_editor):
    smtp_settings = configure(server, user=smtp_editor)

    assert smtp_settings.status == "complete"
    assert smtp_settings.live_config.host == "localhost"
    assert smtp_settings.live_config.version == smtp_settings.version
    event = smtp_settings.current_event
    assert event.status == "complete"
    assert event.triggered_by == smtp_editor
    assert event.duration.total_seconds() > 0
    # The test logged in and checked the sender, but sent no message.
    assert server.auth_attempts == 1
    assert any(line.upper().startswith("MAIL FROM") for line in server.commands)
    assert server.messages == []


def test_implicit_tls_and_auth_succeed_and_promote(start_server, trust):
    server = start_server(mode="ssl")
    trust(server.port, "ssl")

    smtp_settings = configure(server)

    assert smtp_settings.status == "complete"
    assert smtp_settings.live_config.port == server.port
    assert server.auth_attempts == 1


def test_history_records_every_transition(server, editor):
    submit(user=editor, port=str(server.port), password="", host="")  # partial
    configure(server, user=editor)

    events = SmtpSettings.load().events.order_by("created_at", "pk")
    statuses = list(events.filter(kind="").values_list("status", flat=True))
    assert statuses == ["started", "running", "complete"]
    # Switching sending on (in the first save) is a row of its own (issue 13).
    assert list(events.exclude(kind="").values_list("kind", flat=True)) == ["sending_enabled"]


def test_wrong_password_fails_with_auth_and_keeps_old_live_config(server, settings):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    good = configure(server)

    submit(port=str(server.port), password="wrong-password")

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "failed"
    assert smtp_settings.failure_category == "auth"
    assert smtp_settings.live_config.version == good.version
    assert smtp_settings.live_differs
    # Mail still flows with the last working configuration.
    with committed():
        sent = mail.send_mail("Buchung", "Hallo", "shop@dropzone.example", ["kunde@example.com"])
    assert sent == 1
    server.wait_for_messages(1)
    assert server.messages[0].rcpt_tos == ["kunde@example.com"]


def test_server_without_starttls_fails_without_sending_credentials(start_server, trust):
    server = start_server(mode="plain", offer_starttls=False)
    trust(server.port, "starttls")

    smtp_settings = configure_failing(server)

    assert smtp_settings.failure_category == "tls_unavailable"
    assert not any(line.upper().startswith("AUTH") for line in server.commands)
    assert PASSWORD.encode() not in server.raw_transcript


def configure_failing(server, **overrides):
    form = submit(port=str(server.port), **overrides)
    assert not form.errors, form.errors
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "failed"
    assert smtp_settings.live_config is None
    return smtp_settings


def test_untrusted_certificate_is_a_certificate_failure(start_server, trust):
    server = start_server(mode="starttls", ca=smtpservers.TestCA())
    trust(server.port)

    assert configure_failing(server).failure_category == "certificate"
    assert server.auth_attempts == 0


def test_wrong_hostname_is_a_certificate_failure(start_server, trust, ca):
    server = start_server(mode="starttls", server_context=ca.server_context("wrong.example"))
    trust(server.port)

    assert configure_failing(server).failure_category == "certificate"


@pytest.mark.parametrize("server_class", [smtpservers.SilentServer, smtpservers.DripServer])
def test_silent_and_dripping_servers_time_out_within_the_deadline(
    start_server, trust, settings, server_class
):
    settings.ICARUS_SMTP_TIMEOUT = 2
    server = start_server(server_class)
    trust(server.port)

    started = time.monotonic()
    smtp_settings = configure_failing(server)
    elapsed = time.monotonic() - started

    assert smtp_settings.failure_category == "timeout"
    assert elapsed < 4


@pytest.mark.parametrize(
    ("server_kwargs", "category"),
    [
        (
            {
                "auth_reply": "534-5.7.9 Application-specific password required. Learn more "
                "at https://support.google.com/mail/?p=InvalidSecondFactor"
            },
            "app_password_required",
        ),
        (
            {
                "auth_reply": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                "is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more "
                "information."
            },
            "auth_disabled",
        ),
        ({"mail_from_reply": "550 Sender address is not allowed"}, "sender_rejected"),
        (
            {"mail_from_reply": "550 Forbidden domain 'example' in Envelope-From (B-EFROM-STRATO)"},
            "sender_rejected",
        ),
        ({"auth_reply": "535 5.7.8 Authentication credentials invalid"}, "auth"),
    ],
)
def test_replayed_provider_replies_get_their_category(start_server, trust, server_kwargs, category):
    server = start_server(mode="starttls", **server_kwargs)
    trust(server.port)

    smtp_settings = configure_failing(server)

    assert smtp_settings.failure_category == category
    reply = next(iter(server_kwargs.values())).split(" ", 1)[1][:40]
    assert reply.split(".")[0] in smtp_settings.current_event.reply


def test_connection_refused_is_a_connection_failure(trust):
    port = smtpservers.free_port()
    trust(port)

    smtp_settings = configure_failing(type("Closed", (), {"port": port}))

    assert smtp_settings.failure_category == "connection"


@pytest.mark.parametrize("finish_order", ["old_first", "new_first"])
def test_a_result_for_an_older_version_never_promotes(server, finish_order, settings):
    """Two quick saves: whatever order the tests finish in, the newest data wins."""
    from wagtail_icarus_smtp import tasks

    def save_without_running(**overrides):
        form = submit(port=str(server.port), run_tasks=False, **overrides)
        assert not form.errors, form.errors
        return SmtpSettings.load().version

    old = save_without_running(from_name="Alt", host="127.0.0.1")
    new = save_without_running(from_name="Neu", host="localhost")
    order = [old, new] if finish_order == "old_first" else [new, old]
    pk = SmtpSettings.load().pk
    results = {version: tasks.validate_settings(pk, version) for version in order}
    # A test of the old version that was already under way when the new draft was
    # saved reaches promotion late: it must not promote either.
    late = live.promote(pk, old, duration=0.1)

    assert results[old] == {"status": "superseded"}
    assert late is None
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.live_config.host == "localhost"
    assert smtp_settings.live_config.version == new
    assert smtp_settings.status == "complete"


def test_changing_only_name_or_switch_needs_no_new_test(server):
    smtp_settings = configure(server)
    version, attempts = smtp_settings.version, server.auth_attempts

    submit(port=str(server.port), password="", from_name="Neuer Name", enabled=None)

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.version == version
    assert server.auth_attempts == attempts
    assert smtp_settings.from_name == "Neuer Name"
    assert smtp_settings.enabled is False
    assert smtp_settings.status == "complete"
    assert live.load().reason == live.DISABLED


def test_validate_task_arguments_hold_no_secret(server):
    from django_q.models import Task

    configure(server)

    task = Task.objects.get(func="wagtail_icarus_smtp.tasks.validate_settings")
    assert task.success
    assert list(task.args) == [SmtpSettings.load().pk, SmtpSettings.load().version]
    assert PASSWORD not in repr(task.args) + repr(task.kwargs) + repr(task.result)
    assert MAILBOX not in repr(task.args)
    # The deliverability check that a successful test queues: a flag, nothing else.
    dns_task = Task.objects.get(func="wagtail_icarus_smtp.tasks.check_deliverability")
    assert list(dns_task.args) == [True]
    assert PASSWORD not in repr(dns_task.args) + repr(dns_task.kwargs) + repr(dns_task.result)
    assert MAILBOX not in repr(dns_task.args) + repr(dns_task.result)
