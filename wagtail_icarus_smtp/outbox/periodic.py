"""What the workers run: a drain of the outbox, and the periodic health check (re-test
the live configuration, evaluate alerts, drain what is due, purge old bodies)."""

from .. import status
from ..models import SmtpSettings
from ..setup import health
from . import alerts, delivery, housekeeping, pacing, wakeup


def drain():
    """Send every due message; schedule the retries; evaluate alerts. Returns counts."""
    wakeup.woken()
    alerts.worker_answered()
    result = delivery.drain()
    if result.deferred:
        delivery.schedule_retry()
    alerts.evaluate(result)
    return {
        "sent": result.sent,
        "deferred": result.deferred,
        "failed": result.failed,
        "held": result.held,
    }


def health_check():
    """Re-test the live configuration without sending; drain what is due; purge."""
    smtp_settings = SmtpSettings.base_queryset().first()
    live_row = smtp_settings.live_config if smtp_settings else None
    if live_row is None:
        housekeeping.purge()
        return {"status": "not_configured"}
    failure = health.check(smtp_settings, live_row)
    if pacing.pause(failure, smtp_settings.pk, smtp_settings.send_rate):
        failure = None  # the provider's send limit: the mailbox works, the outbox waits
    alerts.evaluate(live_failure=failure, live_ok=failure is None)
    if failure is None and smtp_settings.enabled:
        drain()
    housekeeping.purge()
    return {
        "status": status.FAILED if failure else status.COMPLETE,
        "category": failure.category if failure else "",
    }
