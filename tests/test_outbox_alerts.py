"""Alerts (signal and webhook, not repeated on every failure) and the health check."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule

from tests import smtpservers
from tests.utils import committed, configure, german
from wagtail_icarus_smtp import queue, signals, tasks
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import AlertState, DeliveryWakeup, OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.outbox import alerts, periodic

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(settings):
    """A local HTTP server on 127.0.0.1 that records the JSON bodies posted to it."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.ICARUS_SMTP_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{httpd.server_port}/hook"
    yield received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def heard():
    calls = []

    def listener(sender, **kwargs):
        calls.append(kwargs)

    signals.alert.connect(listener)
    yield calls
    signals.alert.disconnect(listener)


def send_one(subject="Buchung"):
    with committed():
        EmailBackend().send_messages([EmailMessage(subject, "x", None, ["k@example.com"])])


def test_550_fails_with_category_and_raises_one_alert(server, settings, webhook, heard):
    settings.ICARUS_SMTP_ALERT_FAILURES = 1
    configure(server)
    server.mail_from_reply = smtpservers.format_reply(
        "550 5.7.1 Sender address is not allowed for this account"
    )

    send_one("A")
    send_one("B")  # still failing: no second alert

    assert [row.status for row in OutboxMessage.objects.all()] == ["failed", "failed"]
    assert OutboxMessage.objects.first().last_category == "sender_rejected"
    failing = [c for c in heard if c["kind"] == alerts.DELIVERIES_FAILING]
    assert len(failing) == 1
    assert failing[0]["active"] and not failing[0]["reminder"]
    assert [w["kind"] for w in webhook] == [alerts.DELIVERIES_FAILING]
    assert "failed" in webhook[0]["text"]
    assert "S3cret" not in json.dumps(webhook)


def test_connection_failure_alerts_once_then_resolves(server, heard):
    configure(server)
    server.stop()
    send_one("A")
    send_one("B")
    live = [c for c in heard if c["kind"] == alerts.LIVE_NOT_WORKING]
    assert [(c["active"], c["reminder"]) for c in live] == [(True, False)]

    server.start()
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    tasks.deliver_outbox()

    live = [c for c in heard if c["kind"] == alerts.LIVE_NOT_WORKING]
    assert [c["active"] for c in live] == [True, False]


def test_a_reminder_after_the_interval(server, heard, settings):
    settings.ICARUS_SMTP_ALERT_AFTER = 60
    configure(server, enabled=None)
    send_one()
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(hours=2))

    alerts.evaluate()
    alerts.evaluate()
    AlertState.objects.filter(kind=alerts.MAIL_WAITING).update(
        notified_at=timezone.now() - timedelta(days=2)
    )
    alerts.evaluate()

    waiting = [c for c in heard if c["kind"] == alerts.MAIL_WAITING]
    assert [(c["active"], c["reminder"]) for c in waiting] == [(True, False), (True, True)]
    assert "1 e-mail waiting" in waiting[0]["message"]


def test_alert_texts_are_in_the_sites_language(server, settings, webhook, heard):
    settings.LANGUAGE_CODE = "de"
    configure(server)
    server.stop()
    send_one("A")  # the live configuration stops working
    server.start()
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    with committed():  # the worker's drain commits; then the webhook task is queued
        tasks.deliver_outbox()  # and works again

    texts = [w["text"] for w in webhook if w["kind"] == alerts.LIVE_NOT_WORKING]
    assert texts[0].startswith("Die bisher funktionierende SMTP-Konfiguration funktioniert nicht")
    assert texts[1] == "Behoben: Die SMTP-Verbindung funktioniert wieder."
    assert heard[0]["message"] == texts[0]


def test_a_broken_webhook_is_logged_not_raised(settings, caplog):
    settings.ICARUS_SMTP_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{smtpservers.free_port()}/x"
    with committed():
        alerts.notify("mail_waiting", active=True, reminder=False, message="m", since=None)
    assert "Alert webhook failed" in caplog.text


def test_health_check_records_history_only_on_change(server):
    smtp_settings = configure(server)
    events = smtp_settings.events.count()

    assert periodic.health_check()["status"] == "complete"
    assert smtp_settings.events.count() == events  # unchanged: no row

    server.stop()
    assert periodic.health_check()["category"] == "connection"
    assert periodic.health_check()["category"] == "connection"
    assert smtp_settings.events.count() == events + 1
    assert SmtpSettings.load().status == "failed"

    server.start()
    periodic.health_check()
    assert smtp_settings.events.count() == events + 2
    assert SmtpSettings.load().status == "complete"
    assert "DATA" not in [c.upper() for c in server.commands]  # tested without sending


def test_mail_the_health_check_could_not_deliver_gets_a_retry(server):
    configure(server, enabled=None)
    send_one("Wartet")  # held while sending is off, then due (no drain of its own)
    OutboxMessage.objects.update(status="queued")
    SmtpSettings.objects.update(enabled=True)
    server.data_reply = smtpservers.format_reply("451 4.3.0 Try again later")

    periodic.health_check()

    assert OutboxMessage.objects.get().status == "deferred"
    retry = Schedule.objects.get(name=queue.RETRY_SCHEDULE)
    assert retry.next_run == OutboxMessage.objects.get().next_attempt_at


def test_health_check_schedule_is_created_once_on_migrate(settings):
    assert Schedule.objects.filter(name=queue.HEALTH_SCHEDULE).count() == 1
    settings.ICARUS_SMTP_HEALTH_CHECK_INTERVAL = 15
    call_command("migrate", verbosity=0)
    [schedule] = Schedule.objects.filter(name=queue.HEALTH_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        queue.HEALTH_CHECK,
        Schedule.MINUTES,
        15,
    )


def test_editors_see_active_alerts_in_banner_dashboard_and_status_bar(server, editor, client):
    from django.urls import reverse

    configure(server)
    server.stop()
    send_one("A")  # the live configuration stops working: an alert
    client.force_login(german(editor))

    banner = client.get(
        reverse("wagtail_icarus_smtp:banner"), HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    ).json()
    home = client.get("/admin/").content.decode()
    page = client.get(
        reverse("wagtailsettings:edit", args=["wagtail_icarus_smtp", "smtpsettings", 1]).replace(
            "/1/", f"/{SmtpSettings.load().pk}/"
        )
    ).content.decode()

    expected = "hat aufgehört zu funktionieren"
    assert expected in banner["text"]
    assert 'data-icarus-smtp-alert="live_not_working"' in home
    assert 'data-icarus-smtp-alert="live_not_working"' in page
    assert "1 E-Mail wartet auf den Versand" in page


def wait_for(received, count, seconds=10):
    """The webhook is posted from a thread: wait until ``count`` bodies arrived."""
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return received


def test_no_worker_is_an_alert_said_by_the_request_that_notices(
    server, settings, webhook, heard, monkeypatch
):
    settings.LANGUAGE_CODE = "de"
    configure(server)
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks wait in the ORM broker for a worker
    send_one("Buchung 1")  # wakes the worker: one delivery task is pending
    assert heard == []
    DeliveryWakeup.objects.update(requested_at=timezone.now() - timedelta(minutes=2))

    send_one("Buchung 2")  # a minute later, nobody has picked the task up

    [alert] = [h for h in heard if h["kind"] == alerts.NO_WORKER]
    assert alert["active"] is True
    assert "qcluster" in alert["message"]
    [posted] = wait_for(webhook, 1)  # no worker would post it: the request did
    assert posted["kind"] == "no_worker"
    assert posted["text"].startswith("Kein Hintergrundprozess")
    assert OutboxMessage.objects.filter(status="queued").count() == 2  # kept

    send_one("Buchung 3")  # said once, not on every booking
    assert len([h for h in heard if h["kind"] == alerts.NO_WORKER]) == 1

    with committed():
        tasks.deliver_outbox()  # a worker starts

    resolved = [h for h in heard if h["kind"] == alerts.NO_WORKER][-1]
    assert resolved["active"] is False
    assert OutboxMessage.objects.filter(status="sent").count() == 3
    # The worker is back: it posts the "resolved" webhook itself (a queued task).
    [task] = [q.task for q in OrmQ.objects.all() if q.task["func"] == queue.ALERT_WEBHOOK]
    tasks.post_alert_webhook(*task["args"])
    assert webhook[1]["text"] == "Behoben: Ein Hintergrundprozess versendet die E-Mails wieder."
