"""What editors (page, JSON view) and operators (``icarus_smtp_status``) are told.

One function builds the report from a settings instance, so the admin page, the JSON
status view and the management command can never disagree. Contains no secret.
"""

from datetime import datetime

from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext

from .. import outbox, status
from ..models.settings import RECENT_EVENTS
from ..outbox import alerts
from ..smtp import advice
from . import replies, sending_state

#: Wagtail admin icon of each state (the page's status bar and the dashboard panel).
ICONS = {
    status.NOT_CONFIGURED: "cog",
    status.STARTED: "edit",
    status.RUNNING: "spinner",
    status.COMPLETE: "success",
    status.FAILED: "error",
}

#: Field labels for ``missing_fields`` (the form's names).
FIELD_LABELS = {
    "email": _lazy("E-mail"),
    "password": _lazy("Password"),
    "host": _lazy("SMTP server"),
    "port": _lazy("Port"),
    "oauth_tenant_id": _lazy("Tenant ID"),
    "oauth_client_id": _lazy("Client ID"),
    "oauth_client_secret": _lazy("Client secret"),
    "google_service_account": _lazy("Service account key (JSON)"),
}


def when(value):
    """A localised short date and time, in the site's time zone."""
    return date_format(localtime(value), "SHORT_DATETIME_FORMAT")


def event_rows(events):
    """The history rows the admin shows for ``events`` (JSON-serialisable)."""
    return [_event_row(event) for event in events]


def _event_row(event):
    label = status.category_help(event.category)[0]
    reply, detail = replies.split(event.reply)
    return {
        "time": event.created_at.isoformat(),
        "time_display": when(event.created_at),
        "status": event.status,
        "status_label": str(status.Status(event.status).label),
        "kind": event.kind,
        "kind_label": event.get_kind_display() if event.kind else "",
        "category": event.category,
        "category_label": str(label),
        "reply": reply,
        "detail": detail,
        "duration_ms": (
            round(event.duration.total_seconds() * 1000) if event.duration is not None else None
        ),
        "triggered_by": event.triggered_by.get_username() if event.triggered_by else "",
        "version": event.version,
    }


def _stale_hint():
    return _(
        "No task worker seems to be running: the connection test was never picked up. "
        "Please ask your technical administrator to start one "
        "(“python manage.py qcluster”, django-q2), then save again."
    )


def _last_test_label(smtp_settings, event):
    """When the current data was last tested, in words; empty before any test."""
    if event is not None and event.status == status.RUNNING:
        return _("Test started %(time)s") % {"time": when(event.created_at)}
    last_test = smtp_settings.last_test()
    if last_test is None:
        return _("Not tested yet")
    if last_test.duration is not None:
        return _("Last test %(time)s (%(ms)s ms)") % {
            "time": when(last_test.created_at),
            "ms": round(last_test.duration.total_seconds() * 1000),
        }
    return _("Last test %(time)s") % {"time": when(last_test.created_at)}


def _outbox_summary():
    return outbox.summary()


def _alerts(outbox_summary):
    return alerts.for_admin(queued=outbox_summary["counts"]["queued"])


def _waiting_label(summary):
    """How much accepted mail is still waiting to go out, in words; empty when none."""
    count = summary["waiting"]
    if not count:
        return ""
    since = when(datetime.fromisoformat(summary["oldest_waiting"]))
    return ngettext(
        "%(count)d message is waiting to be sent (the oldest since %(since)s).",
        "%(count)d messages are waiting to be sent (the oldest since %(since)s).",
        count,
    ) % {"count": count, "since": since}


def build(smtp_settings, *, events=RECENT_EVENTS):
    """Return a JSON-serialisable dict describing the current state.

    Reads the settings' recent events once (the current event and the last test come
    from them), the outbox summary and the alerts: four queries with the settings row,
    and the password is decrypted at most once. Build it once per request.
    """
    recent = smtp_settings.recent_events
    if events > RECENT_EVENTS:  # the operator command may ask for more
        recent = list(smtp_settings.events.select_related("triggered_by")[:events])
    value = smtp_settings.status
    category = smtp_settings.failure_category
    label, explanation, fix = status.category_help(category)
    event = smtp_settings.current_event
    live = smtp_settings.live_config
    current = event is not None and category and event.category == category
    reply, detail = replies.split(event.reply if current else "")
    outbox_summary = _outbox_summary()
    report = {
        "status": value,
        "status_label": str(status.Status(value).label),
        "action": str(status.STATUS_ACTIONS[value]),
        "final": value != status.RUNNING,
        "category": category,
        "category_label": str(label),
        "explanation": str(explanation),
        "fix": str(fix),
        "reply": reply,
        "detail": detail,
        "icon": ICONS[value],
        "last_change": event.created_at.isoformat() if event else None,
        "last_change_display": when(event.created_at) if event else "",
        "last_test_label": _last_test_label(smtp_settings, event),
        "enabled": smtp_settings.enabled,
        "enabled_label": _("Enabled") if smtp_settings.enabled else _("Disabled"),
        "missing_fields": smtp_settings.missing_fields(),
        "missing_labels": [str(FIELD_LABELS[name]) for name in smtp_settings.missing_fields()],
        "stale": smtp_settings.is_stale,
        "stale_hint": _stale_hint() if smtp_settings.is_stale else "",
        "live": bool(live),
        "live_since": live.promoted_at.isoformat() if live else None,
        "live_differs": smtp_settings.live_differs,
        "live_note": "",
        "outbox": outbox_summary,
        "alerts": _alerts(outbox_summary),
        "waiting_count": outbox_summary["waiting"],
        "waiting_label": _waiting_label(outbox_summary),
        "events": event_rows(recent[:events]),
    }
    _add_sending_state(report, smtp_settings)
    # The form shows a draft that no mail goes through: say so, offer the way back.
    report["draft_not_in_use"] = value == status.FAILED or smtp_settings.live_differs
    report["can_discard_draft"] = smtp_settings.live_differs
    report["affected_fields"] = list(status.CATEGORY_FIELDS.get(category, ()))
    report["commands"] = ""
    specific = advice.for_failure(category, report["reply"], smtp_settings) if category else None
    if specific is not None:
        report["fix"], report["commands"] = specific.fix, specific.commands
    if smtp_settings.live_differs and value != status.RUNNING:
        report["live_note"] = _(
            "Mail is still being sent with the last working settings (in use since %(since)s)."
        ) % {"since": when(live.promoted_at)}
    elif smtp_settings.live_differs and value == status.RUNNING:
        report["live_note"] = _(
            "Until the test succeeds, mail is sent with the last working settings."
        )
    return report


def _add_sending_state(report, smtp_settings):
    """Whether mail goes out now; if not, the bar, badge and banner say why and how
    many messages wait (``sending_state``)."""
    value = sending_state.state(smtp_settings, report["alerts"], report["outbox"])
    report["sending_state"] = value
    report["can_send"] = value == sending_state.ON
    report["sending_note"] = sending_state.note(value, report["outbox"], smtp_settings)
    until = sending_state.paused_until(smtp_settings)
    report["paused_until"] = until.isoformat() if until is not None else None
    report["sending_badge"] = sending_state.badge(value, report["enabled_label"], report["outbox"])
    report["sending_class"] = sending_state.badge_class(value)
    report["action"] = str(sending_state.action(report["status"], value, report["action"]))
