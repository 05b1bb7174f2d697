"""django-q2 entry points only. Their dotted names are stored in django-q2's Task and
Schedule rows (see ``queue``), so they never move; nothing in the package imports this
module. Arguments are ids, versions and plain values (an alert's text) — never a secret,
because django-q2 stores task arguments and results in the database."""

from . import queue
from .deliverability import run as deliverability
from .outbox import alerts, periodic
from .setup import validation


def validate_settings(settings_pk, version):
    """Test draft ``version`` of the settings ``settings_pk``; promote it if it works."""
    event = validation.validate(settings_pk, version)
    if event is None:
        return {"status": "superseded"}
    return {"status": event.status, "category": event.category}


def deliver_outbox():
    """Send every due message of the outbox; returns the counts."""
    return periodic.drain()


def health_check():
    """Re-test the live configuration without sending; drain what is due."""
    result = periodic.health_check()
    queue.enqueue_deliverability(force=False)  # a stored result younger than DNS_CACHE is kept
    return result


def post_alert_webhook(kind, active, reminder, message, since_iso):
    """POST one alert to ``ICARUS_SMTP_ALERT_WEBHOOK_URL`` (the URL is read here, never
    passed: it is a secret). Never raises, so django-q2 does not repeat it."""
    posted = alerts.post_webhook(
        kind, active=active, reminder=reminder, message=message, since_iso=since_iso
    )
    return {"posted": posted}


def check_deliverability(force=False):
    """Check SPF, DKIM, DMARC and MX of the live mailbox's domain and store the result
    (``force``: ask the DNS even when a stored result is still fresh). Never raises for
    DNS trouble: an unanswered lookup is stored as "could not be checked"."""
    report = deliverability.check_live(force=force)
    if report is None:
        return {"status": "not_configured"}
    return {"domain": report.domain, "states": {r["check"]: r["state"] for r in report.results}}
