"""What the workers run: a drain of the outbox, and the periodic health check (re-test
the live configuration, evaluate alerts, drain what is due, purge old bodies)."""

import time

from .. import conf, status
from ..models import SmtpSettings
from ..setup import health
from . import alerts, delivery, housekeeping, leases, pacing, wakeup
from .store import Result

#: How often a lingering drain looks for new mail (seconds).
LINGER_POLL = 0.05


def drain():
    """Send every due message, and what comes in while the drain lingers; schedule the
    retries; evaluate alerts. Returns counts."""
    started = time.monotonic()
    wakeup.woken()
    alerts.worker_answered()
    result = delivery.drain()
    result.add(_linger(until=started + conf.get("DRAIN_SECONDS") / 2))
    if result.deferred:
        delivery.schedule_retry()
    alerts.evaluate(result)
    return {
        "sent": result.sent,
        "deferred": result.deferred,
        "failed": result.failed,
        "held": result.held,
    }


def _linger(until):
    """Stay for more mail up to ``ICARUS_SMTP_DRAIN_LINGER`` seconds after the last
    that came (not past ``until``: with a batch still running at that moment the task
    stays within 1.5 times ``DRAIN_SECONDS``, inside django-q2's timeout, see check W003).

    Meanwhile the wake-up counts as asked, so a burst of bookings only reads it and
    goes out with this drain. At the end the wake-up is cleared first and the outbox
    looked at after: mail committed before the clear is found here (and woken for),
    mail after it wakes the worker itself.
    """
    seconds = conf.get("DRAIN_LINGER")
    total = Result()
    if not seconds or time.monotonic() >= until:
        return total
    wakeup.lingering()
    quiet_until = time.monotonic() + seconds
    while time.monotonic() < min(quiet_until, until):
        if leases.anything_due():  # mail came during the last drain: at once
            total.add(delivery.drain(max_batches=1))
            quiet_until = time.monotonic() + seconds
        else:
            time.sleep(LINGER_POLL)
    wakeup.woken()
    if leases.anything_due():
        wakeup.wake()
    return total


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
