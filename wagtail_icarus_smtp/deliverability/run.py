"""Check the live mailbox's domain and store the result; the django-q2 task
``tasks.check_deliverability`` calls this (queued after a promotion, by the health-check
task and by "Check again").

The stored result is reused for ``ICARUS_SMTP_DNS_CACHE`` seconds by the periodic check;
"Check again", a newly promoted configuration and the command always ask the DNS. A
check that passed and now fails is "regressed": ``signals.deliverability_checked``
carries it to the alerts. A check the DNS could not answer keeps its last known state
for that comparison, so a DNS outage neither raises nor ends an alert.
"""

from email.utils import parseaddr

from django.conf import settings
from django.utils import timezone

from .. import conf, providers, queue, signals
from ..models import DeliverabilityReport, SmtpSettings
from . import checks

#: Seconds before its expiry a stored result is already refreshed: the hourly health
#: check starts its DNS check a little later than the one before, and should not find
#: an hour-old result still "fresh" by a few seconds (and keep it for another hour).
REFRESH_MARGIN = 300


def reply_to_domain():
    """The domain of the site's own From (``DEFAULT_FROM_EMAIL``), kept as Reply-To."""
    return checks.domain_of(parseaddr(settings.DEFAULT_FROM_EMAIL or "")[1])


def live_target():
    """``(settings, domain, provider, mailbox)`` of the live configuration, or ``None``."""
    smtp_settings = SmtpSettings.base_queryset().first()
    live = smtp_settings.live_config if smtp_settings is not None else None
    if live is None:
        return None
    provider = providers.for_mailbox(live.host, live.email)
    return smtp_settings, checks.domain_of(live.email), provider, live.email


def check_domain(domain, *, provider=None, mailbox=""):
    """The results for any ``domain`` (the command's ``--domain``), nothing stored."""
    return checks.run_all(domain, provider=provider, mailbox=mailbox)


def is_fresh(report, domain, provider_key):
    if report.checked_at is None or (report.domain, report.provider) != (domain, provider_key):
        return False
    age = (timezone.now() - report.checked_at).total_seconds()
    return age < conf.get("DNS_CACHE") - REFRESH_MARGIN


def check_live(*, force=False):
    """Check the live mailbox's domain and store the result; returns the stored
    ``DeliverabilityReport``, or ``None`` when nothing is live yet."""
    target = live_target()
    if target is None:
        return None
    smtp_settings, domain, provider, mailbox = target
    provider_key = provider.key if provider is not None else ""
    report, _created = DeliverabilityReport.objects.get_or_create(settings=smtp_settings)
    if not force and not report.pending and is_fresh(report, domain, provider_key):
        return report
    results = checks.run_all(
        domain, provider=provider, mailbox=mailbox, reply_to_domain=reply_to_domain()
    )
    same_domain = report.domain == domain
    stored = [
        _with_known_state(result, report.results if same_domain else []) for result in results
    ]
    report.regressed = regressions(
        report.results if same_domain else [], stored, report.regressed if same_domain else []
    )
    report.domain, report.provider = domain, provider_key
    report.results, report.checked_at = stored, timezone.now()
    report.save()
    signals.deliverability_checked.send(
        sender=type(report), report=report, regressed=list(report.regressed)
    )
    return report


def _with_known_state(result, previous):
    """``result`` as stored, with ``known_state``: its state, or — when the DNS did not
    answer — the state last seen for that check."""
    row = result.as_dict()
    if result.state == checks.UNKNOWN:
        before = next((item for item in previous if item["check"] == result.check), {})
        row["known_state"] = before.get("known_state", "")
    else:
        row["known_state"] = result.state
    return row


def regressions(previous, current, regressed):
    """Checks that passed before and fail now, or that regressed and still fail."""
    before = {item["check"]: item.get("known_state", item["state"]) for item in previous}
    return [
        item["check"]
        for item in current
        if item["check"] in checks.CHECKS
        and item["known_state"] == checks.FAIL
        and (before.get(item["check"]) == checks.PASS or item["check"] in regressed)
    ]


def connect():
    """A configuration that went live is checked at once (called from ``apps.ready``)."""
    signals.promoted.connect(
        _on_promoted, sender=SmtpSettings, dispatch_uid="wagtail_icarus_smtp.deliverability"
    )


def _on_promoted(sender, **kwargs):
    queue.enqueue_deliverability(force=True)
