"""Whether the site's mail goes out right now, and if not, why — in words for the
status bar, the dashboard panel, the banner on every admin page and the sending badge.

Decided from what the report already holds (no query of its own): the settings, the
active alerts and the outbox summary. Whenever mail cannot go out, every place says so,
and how many messages wait.
"""

from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import status
from ..outbox.alerts import LIVE_NOT_WORKING

ON = "on"
#: Sending is switched off.
OFF = "off"
#: Switched on, but no configuration has passed a test yet (e.g. the first setup failed).
NOT_LIVE = "not_live"
#: Switched on, but the live configuration stopped working (an active alert).
FAILING = "failing"
#: Switched on and working, but messages wait for a retry (a provider's rate limit,
#: a temporary refusal).
RETRYING = "retrying"
#: Switched on and working, but the provider answered that its send limit is reached:
#: nothing goes out before the pause ends (``outbox/pacing``). Not a failure.
PAUSED = "paused"


def state(smtp_settings, alerts, summary):
    """One of the values above."""
    if not smtp_settings.enabled:
        return OFF
    if smtp_settings.live_config is None:
        return NOT_LIVE
    if any(alert["kind"] == LIVE_NOT_WORKING for alert in alerts):
        return FAILING
    if paused_until(smtp_settings) is not None:
        return PAUSED
    if summary["deferred"]:
        return RETRYING
    return ON


def paused_until(smtp_settings):
    """When the pause of the live configuration ends (a provider's send limit), or
    ``None`` when sending is not paused."""
    live = smtp_settings.live_config
    until = live.paused_until if live is not None else None
    return until if until is not None and until > timezone.now() else None


def _clock(value):
    """ "14:05" today, else a short date and time, in the site's time zone."""
    value = localtime(value)
    if value.date() == localtime().date():
        return time_format(value, "TIME_FORMAT")
    return date_format(value, "SHORT_DATETIME_FORMAT")


def _pause_text(smtp_settings):
    live = smtp_settings.live_config
    text = _(
        "Sending paused until %(time)s: the provider limits how many e-mails this "
        "mailbox may send (%(reply)s). The e-mails wait and go out by themselves then."
    )
    reply = live.pause_reply or _("no reply text")
    return text % {"time": _clock(paused_until(smtp_settings)), "reply": reply}


def _waiting(count):
    return ngettext(
        "%(count)d e-mail is waiting to be sent.",
        "%(count)d e-mails are waiting to be sent.",
        count,
    ) % {"count": count}


def note(value, summary, smtp_settings=None):
    """Why no mail goes out now and how many wait (translated); ``""`` when it does.
    ``smtp_settings``: for ``PAUSED``, whose pause (until when, the provider's reply)."""
    texts = {
        OFF: _(
            "SMTP mail sending is switched off: the site sends no e-mails, customers "
            "receive no booking confirmations. The e-mails are kept and sent once "
            "sending is switched on again."
        ),
        NOT_LIVE: _(
            "SMTP mail sending is switched on, but no e-mail can be sent yet: no "
            "settings have passed the connection test. The e-mails are kept and sent "
            "as soon as the setup succeeds."
        ),
        FAILING: "",  # the active alert (shown beside it) says why
        RETRYING: _("Some e-mails could not be delivered yet; they are retried automatically."),
        PAUSED: _pause_text(smtp_settings) if value == PAUSED else "",
    }
    if value == ON:
        return ""
    count = summary["waiting"]
    return " ".join(text for text in (texts[value], _waiting(count) if count else "") if text)


def badge(value, enabled_label, summary):
    """The sending badge: "Enabled" only when mail really goes out."""
    labels = {
        ON: enabled_label,
        OFF: enabled_label,
        NOT_LIVE: _("Enabled, but nothing can be sent yet"),
        FAILING: _("Enabled, but sending fails"),
        RETRYING: _("Enabled, sending delayed"),
        PAUSED: _("Enabled, paused by the provider's send limit"),
    }
    count = summary["waiting"]
    if not count or value == ON:
        return labels[value]
    waiting = ngettext("%(count)d waiting", "%(count)d waiting", count) % {"count": count}
    return f"{labels[value]} · {waiting}"


def badge_class(value):
    """``on`` (green), ``off`` (red) or ``warn``."""
    return {ON: "on", OFF: "off"}.get(value, "warn")


def action(report_status, value, default):
    """The status line's "what now": never "mail can be sent" while none goes out."""
    if report_status != status.COMPLETE or value == ON:
        return default
    if value == OFF:
        return _("The SMTP connection works. Sending is switched off: no e-mails are sent.")
    if value == FAILING:
        return _("The test succeeded, but sending does not work at the moment.")
    if value == PAUSED:
        return _("The SMTP connection works. Sending is paused by the provider's send limit.")
    return default
