"""Alerts: the live configuration stopped working, deliveries fail repeatedly, or mail
waits too long. One announcement per change of state plus a reminder interval, sent as
the ``signals.alert`` signal and, when ``ICARUS_SMTP_ALERT_WEBHOOK_URL`` is set, as JSON
to an incoming webhook (Slack, Mattermost and Teams read the ``text`` key). The webhook
is posted by the django-q2 worker (a task), never inside a request — except the alert
that no worker is running: the request that notices posts it from a short-lived thread
(no worker would ever post it).
"""

import http.client
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import conf, queue, signals
from ..models import AlertState, DeliveryAttempt, SmtpSettings
from ..models.outbox import FAILED
from . import housekeeping, wakeup, webhook

logger = logging.getLogger("wagtail_icarus_smtp")

LIVE_NOT_WORKING = "live_not_working"
DELIVERIES_FAILING = "deliveries_failing"
MAIL_WAITING = "mail_waiting"
NO_WORKER = "no_worker"
SECRET_EXPIRING = "secret_expiring"  # noqa: S105 (an alert kind)
CREDENTIALS_EXPIRED = "credentials_expired"
DNS_CHANGED = "dns_changed"
#: Seconds the whole POST to the webhook may take (dial, TLS, request, reply).
WEBHOOK_TIMEOUT = 5

#: What editors read in the admin (banner, dashboard, status bar) for each alert.
ADMIN_TEXTS = {
    LIVE_NOT_WORKING: _(
        "The SMTP connection that worked so far has stopped working: e-mails are kept "
        "and sent as soon as it works again."
    ),
    DELIVERIES_FAILING: _("Several e-mails could not be delivered. See the delivery log."),
    MAIL_WAITING: _("E-mails have been waiting to be sent for a long time."),
    NO_WORKER: _(
        "No background worker is running: e-mails are kept in the outbox but not sent. "
        "Please ask your technical administrator to start one "
        "(“python manage.py qcluster”, django-q2)."
    ),
    SECRET_EXPIRING: _(
        "The Microsoft 365 client secret expires soon: create a new one in the app "
        "registration and enter it here before it does."
    ),
    CREDENTIALS_EXPIRED: _(
        "The client secret or key has expired or was revoked: e-mails are kept until "
        "a new one is entered here."
    ),
    DNS_CHANGED: _(
        "A DNS record that receivers check (SPF, DKIM, DMARC or MX) has changed and no "
        "longer passes: see “Deliverability” on the SMTP settings page."
    ),
}


def evaluate(result=None, *, live_failure=None, live_ok=None):
    """Compare the current conditions with the stored alert states; announce changes.

    ``result`` is an ``store.Result`` (its connection failure counts as the live
    configuration not working); ``live_failure``/``live_ok`` come from a health check.
    Returns the announcements made as ``(kind, active, reminder)`` tuples. Their texts
    (signal, webhook) are in the site's language, ``LANGUAGE_CODE``.
    """
    with translation.override(settings.LANGUAGE_CODE):
        return _evaluate(result, live_failure, live_ok)


def _evaluate(result, live_failure, live_ok):
    now = timezone.now()
    window = timedelta(seconds=conf.get("ALERT_AFTER"))
    states = {state.kind: state for state in AlertState.objects.all()}  # one read for all
    announced = []
    failure = live_failure or (result.connection_failure if result is not None else None)
    if failure is not None:
        announced += _update(LIVE_NOT_WORKING, True, _live_text(failure), now, states=states)
    elif live_ok or (result is not None and result.sent):
        text = gettext("The SMTP connection works again.")
        announced += _update(LIVE_NOT_WORKING, False, text, now, states=states)
    failed = DeliveryAttempt.objects.filter(
        status=FAILED, created_at__gte=now - window, message__is_test=False
    )
    count = failed.count()
    announced += _update(
        DELIVERIES_FAILING,
        count >= conf.get("ALERT_FAILURES"),
        ngettext(
            "%(count)d e-mail delivery failed in the last %(minutes)d minutes.",
            "%(count)d e-mail deliveries failed in the last %(minutes)d minutes.",
            count,
        )
        % {"count": count, "minutes": _minutes(window)},
        now,
        states=states,
    )
    announced += _credentials(failure, now, states)
    summary = housekeeping.summary(now)
    age = summary["oldest_age_seconds"]
    waiting = summary["waiting"]
    announced += _update(
        MAIL_WAITING,
        age is not None and age >= window.total_seconds(),
        ngettext(
            "%(count)d e-mail waiting (held or deferred) for %(minutes)d minutes.",
            "%(count)d e-mails waiting (held or deferred), the oldest for %(minutes)d minutes.",
            waiting,
        )
        % {"count": waiting, "minutes": _minutes(age)},
        now,
        states=states,
    )
    return announced


def _credentials(failure, now, states):
    """Alerts about the OAuth secret: ``SECRET_EXPIRING`` from each of the days in
    ``ICARUS_SMTP_SECRET_EXPIRY_WARNINGS`` before ``oauth_secret_expires`` (announced
    again at each), ``CREDENTIALS_EXPIRED`` at once when the date has passed or a
    sign-in was refused as expired or revoked."""
    smtp_settings = SmtpSettings.base_queryset().first()
    expires = _secret_expires(smtp_settings)
    today = timezone.localdate(now)
    days = (expires - today).days if expires is not None else None
    stage = None
    if days is not None and days >= 0:
        stage = min(
            (limit for limit in conf.get("SECRET_EXPIRY_WARNINGS") if days <= limit), default=None
        )
    message = gettext("The client secret's expiry date is no longer near.")
    if stage is not None:
        message = ngettext(
            "The Microsoft 365 client secret expires on %(date)s (in %(days)d day or less).",
            "The Microsoft 365 client secret expires on %(date)s (in %(days)d days or less).",
            stage,
        ) % {"date": date_format(expires, "SHORT_DATE_FORMAT"), "days": stage}
    announced = _update(
        SECRET_EXPIRING, stage is not None, message, now, renotify=True, states=states
    )
    expired = (days is not None and days < 0) or (
        failure is not None and failure.category == CREDENTIALS_EXPIRED
    )
    text = gettext(
        "The client secret or key of the live SMTP configuration has expired or was "
        "revoked. E-mails are kept until a new one is entered."
    )
    if not expired:
        text = gettext("The sign-in credentials work again.")
    return announced + _update(CREDENTIALS_EXPIRED, expired, text, now, states=states)


def _secret_expires(smtp_settings):
    if smtp_settings is None or smtp_settings.oauth_secret_expires is None:
        return None
    live = smtp_settings.live_config
    methods = {smtp_settings.auth_method, live.auth_method if live else None}
    return smtp_settings.oauth_secret_expires if "microsoft365" in methods else None


def _live_text(failure):
    text = gettext("The live SMTP configuration does not work: %(category)s (%(reply)s)")
    return (text % {"category": failure.category, "reply": failure.reply})[:500]


def _minutes(value):
    seconds = value.total_seconds() if isinstance(value, timedelta) else (value or 0)
    return round(seconds / 60)


def _update(
    kind, active, message, now, *, renotify=False, remind=True, by_worker=True, states=None
):
    """Store and announce a change of ``kind``; with ``renotify``, a new ``message``
    while active is announced too (the next warning stage); without ``remind``, an
    active alert is announced once (no reminders); ``by_worker=False``: see ``notify``.
    ``states``: the stored states by kind, read already (a missing one is created)."""
    state = (states or {}).get(kind)
    if state is None:
        state, _ = AlertState.objects.get_or_create(kind=kind)
    reminder_due = remind and (
        state.notified_at is None
        or now - state.notified_at >= timedelta(seconds=conf.get("ALERT_REMINDER"))
    )
    new_stage = renotify and active and state.active and state.message != message[:500]
    if active == state.active and not (active and reminder_due) and not new_stage:
        return []
    reminder = active and state.active and not new_stage
    if active != state.active:
        state.since = now
    state.active, state.notified_at, state.message = active, now, message[:500]
    state.save()
    notify(
        kind,
        active=active,
        reminder=reminder,
        message=message,
        since=state.since,
        by_worker=by_worker,
    )
    return [(kind, active, reminder)]


def notify(kind, *, active, reminder, message, since, by_worker=True):
    """Send the signal now; queue the webhook for the worker once the state is committed.

    The task's arguments are plain values (the webhook URL, a secret, is read there).
    ``by_worker=False`` (no worker is running): the webhook is posted after the commit
    from a daemon thread of this process, within ``WEBHOOK_TIMEOUT`` seconds."""
    signals.alert.send(
        sender=AlertState,
        kind=kind,
        active=active,
        reminder=reminder,
        message=message,
        since=since,
    )
    if conf.get("ALERT_WEBHOOK_URL"):
        args = (kind, active, reminder, message, since.isoformat() if since else None)
        if by_worker:
            queue.after_commit(queue.ALERT_WEBHOOK, *args)
        else:
            transaction.on_commit(lambda: post_webhook_in_thread(*args))


def post_webhook_in_thread(kind, active, reminder, message, since_iso):
    """Post the webhook from a daemon thread (the caller does not wait); returns it."""
    options = {"active": active, "reminder": reminder, "message": message}
    thread = threading.Thread(
        target=post_webhook,
        args=(kind,),
        kwargs={**options, "since_iso": since_iso},
        name="icarus-alert-webhook",
        daemon=True,
    )
    thread.start()
    return thread


def post_webhook(kind, *, active, reminder, message, since_iso):
    """POST the alert as JSON within ``WEBHOOK_TIMEOUT`` seconds in total (called by the
    worker). The text is escaped for chats. A webhook that fails is logged, never raised;
    returns whether it accepted the alert."""
    url = conf.get("ALERT_WEBHOOK_URL")
    if not url:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        if reminder:
            text = gettext("Reminder: %(message)s") % {"message": message}
        elif not active:
            text = gettext("Resolved: %(message)s") % {"message": message}
        else:
            text = message
    payload = {
        "text": webhook.chat_escape(text),
        "kind": kind,
        "active": active,
        "reminder": reminder,
        "since": since_iso,
    }
    try:
        webhook.post_json(url, payload, WEBHOOK_TIMEOUT)
    except (OSError, ValueError, http.client.HTTPException) as error:
        logger.warning("Alert webhook failed: %s", type(error).__name__)
        return False
    return True


def handed_over():
    """After a hand-over committed: wake the worker. A wake-up still unanswered past
    ``ICARUS_SMTP_WORKER_GRACE`` is the ``no_worker`` alert (found by the same read)."""
    since = wakeup.wake()
    if since is not None:
        _no_worker(since, timezone.now())


def watch_worker(now=None):
    """Announce ``no_worker`` when no worker answered a wake-up within the grace period
    (signal, webhook); returns since when, or ``None``. A worker that starts draining
    resolves it (``worker_answered``)."""
    now = now or timezone.now()
    since = wakeup.unanswered_since(now)
    if since is not None:
        _no_worker(since, now)
    return since


def _no_worker(since, now):
    with translation.override(settings.LANGUAGE_CODE):
        message = gettext(
            "No background worker has picked up the e-mails handed over since %(since)s: "
            "they are kept in the outbox but not sent. Start one "
            "(“python manage.py qcluster”, django-q2)."
        ) % {"since": date_format(timezone.localtime(since), "SHORT_DATETIME_FORMAT")}
        _update(NO_WORKER, True, message, now, by_worker=False)


def worker_answered():
    """A worker is draining: a ``no_worker`` alert is resolved (one query)."""
    if AlertState.objects.filter(kind=NO_WORKER, active=True).exists():
        with translation.override(settings.LANGUAGE_CODE):
            message = gettext("A background worker sends the e-mails again.")
            _update(NO_WORKER, False, message, timezone.now())


def for_admin(queued=None):
    """Active alerts in the editor's language: ``[{"kind", "text", "since"}]``.

    Besides the stored alerts: no worker has answered a wake-up within
    ``ICARUS_SMTP_WORKER_GRACE`` seconds (asked only when ``queued`` mail exists or
    ``queued`` is not known)."""
    shown = set(ADMIN_TEXTS) - {NO_WORKER}  # said from the wake-up row, as it is now
    found = [(kind, since) for kind, _, since in active_alerts() if kind in shown]
    if queued is None or queued > 0:
        unanswered = watch_worker()
        if unanswered is not None:
            found.insert(0, (NO_WORKER, unanswered))
    return [
        {
            "kind": kind,
            "text": str(ADMIN_TEXTS[kind]),
            "since": date_format(timezone.localtime(since), "SHORT_DATETIME_FORMAT"),
        }
        for kind, since in found
    ]


def active_alerts():
    """Active alerts for the admin: ``[(kind, message, since)]``."""
    return list(AlertState.objects.filter(active=True).values_list("kind", "message", "since"))


def deliverability_checked(sender, *, report, regressed, **kwargs):
    """A deliverability check that passed now fails (someone changed the DNS): announced
    once, without reminders; resolved when those checks pass again."""
    with translation.override(settings.LANGUAGE_CODE):
        if regressed:
            message = gettext(
                "The DNS records of %(domain)s changed: %(checks)s no longer pass. "
                "Receivers may reject the site's e-mails or file them as spam."
            ) % {"domain": report.domain, "checks": ", ".join(n.upper() for n in regressed)}
        else:
            message = gettext("The DNS records of %(domain)s pass again.") % {
                "domain": report.domain
            }
        return _update(DNS_CHANGED, bool(regressed), message, timezone.now(), remind=False)


def connect():
    """Listen to the deliverability check (called from ``apps.ready``)."""
    signals.deliverability_checked.connect(
        deliverability_checked, dispatch_uid="wagtail_icarus_smtp.alerts.deliverability"
    )
