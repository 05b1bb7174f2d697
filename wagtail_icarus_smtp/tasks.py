"""django-q2 entry points. Arguments are ids, versions and plain values (an alert's
text) — never a secret, because django-q2 stores task arguments and results in the
database."""

from django.db import transaction
from django_q.models import Schedule
from django_q.tasks import async_task

from . import audit, status, validation
from .deliverability import run as deliverability

GROUP = "wagtail_icarus_smtp"
DELIVER = "wagtail_icarus_smtp.tasks.deliver_outbox"
HEALTH_CHECK = "wagtail_icarus_smtp.tasks.health_check"
ALERT_WEBHOOK = "wagtail_icarus_smtp.tasks.post_alert_webhook"
DELIVERABILITY = "wagtail_icarus_smtp.tasks.check_deliverability"
#: Names of our django-q2 schedules.
RETRY_SCHEDULE = "wagtail_icarus_smtp: retry deferred mail"
HEALTH_SCHEDULE = "wagtail_icarus_smtp: health check"


def enqueue_validation(smtp_settings, *, user=None):
    """Mark the current draft version as being tested and queue the test after commit."""
    smtp_settings.record(status.RUNNING, user=user)
    audit.log(smtp_settings, "test_started", user=user, version=smtp_settings.version)
    pk, version = smtp_settings.pk, smtp_settings.version
    transaction.on_commit(
        lambda: async_task("wagtail_icarus_smtp.tasks.validate_settings", pk, version, group=GROUP)
    )


def validate_settings(settings_pk, version):
    """Test draft ``version`` of the settings ``settings_pk``; promote it if it works."""
    event = validation.validate(settings_pk, version)
    if event is None:
        return {"status": "superseded"}
    if event.status == status.COMPLETE:
        enqueue_deliverability(force=True)  # a new live mailbox: are its DNS records in place?
    return {"status": event.status, "category": event.category}


def enqueue_delivery():
    """Queue one drain of the outbox (after the current transaction commits)."""
    transaction.on_commit(lambda: async_task(DELIVER, group=GROUP))


def schedule_delivery(when):
    """Run a drain at ``when`` (one schedule row, moved earlier when needed)."""
    current = Schedule.objects.filter(name=RETRY_SCHEDULE).first()
    if current is None:
        Schedule.objects.create(
            name=RETRY_SCHEDULE, func=DELIVER, schedule_type=Schedule.ONCE, next_run=when
        )
    elif current.next_run is None or when < current.next_run:
        Schedule.objects.filter(pk=current.pk).update(next_run=when, repeats=-1)


def deliver_outbox():
    """Send every due message of the outbox; returns the counts."""
    from . import alerts, outbox

    result = outbox.drain()
    if result.deferred:
        outbox.schedule_retry()
    alerts.evaluate(result)
    return {
        "sent": result.sent,
        "deferred": result.deferred,
        "failed": result.failed,
        "held": result.held,
    }


def health_check():
    """Re-test the live configuration without sending; drain what is due."""
    from . import health

    result = health.run()
    enqueue_deliverability(force=False)  # a stored result younger than DNS_CACHE is kept
    return result


def post_alert_webhook(kind, active, reminder, message, since_iso):
    """POST one alert to ``ICARUS_SMTP_ALERT_WEBHOOK_URL`` (the URL is read here, never
    passed: it is a secret). Never raises, so django-q2 does not repeat it."""
    from . import alerts

    posted = alerts.post_webhook(
        kind, active=active, reminder=reminder, message=message, since_iso=since_iso
    )
    return {"posted": posted}


def enqueue_deliverability(*, force):
    """Queue the deliverability check of the live mailbox's domain (after commit)."""
    transaction.on_commit(lambda: async_task(DELIVERABILITY, force, group=GROUP))


def check_deliverability(force=False):
    """Check SPF, DKIM, DMARC and MX of the live mailbox's domain and store the result
    (``force``: ask the DNS even when a stored result is still fresh). Never raises for
    DNS trouble: an unanswered lookup is stored as "could not be checked"."""
    report = deliverability.check_live(force=force)
    if report is None:
        return {"status": "not_configured"}
    return {"domain": report.domain, "states": {r["check"]: r["state"] for r in report.results}}
