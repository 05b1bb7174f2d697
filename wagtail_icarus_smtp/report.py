"""What editors (page, JSON view) and operators (``icarus_smtp_status``) are told.

One function builds the report from a settings instance, so the admin page, the JSON
status view and the management command can never disagree. Contains no secret.
"""

from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from . import status

RECENT_EVENTS = 10


def _event_row(event):
    label = status.category_help(event.category)[0]
    return {
        "time": event.created_at.isoformat(),
        "time_display": date_format(localtime(event.created_at), "SHORT_DATETIME_FORMAT"),
        "status": event.status,
        "status_label": str(status.Status(event.status).label),
        "category": event.category,
        "category_label": str(label),
        "reply": event.reply,
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


def _outbox_summary():
    from . import outbox  # models → panels → report: import at call time

    return outbox.summary()


def build(smtp_settings, *, events=RECENT_EVENTS):
    """Return a JSON-serialisable dict describing the current state."""
    value = smtp_settings.status
    category = smtp_settings.failure_category
    label, explanation, fix = status.category_help(category)
    event = smtp_settings.current_event
    live = smtp_settings.live_config
    recent = smtp_settings.events.select_related("triggered_by")[:events]
    report = {
        "status": value,
        "status_label": str(status.Status(value).label),
        "action": str(status.STATUS_ACTIONS[value]),
        "final": value != status.RUNNING,
        "category": category,
        "category_label": str(label),
        "explanation": str(explanation),
        "fix": str(fix),
        "reply": event.reply if event and category and event.category == category else "",
        "last_change": event.created_at.isoformat() if event else None,
        "enabled": smtp_settings.enabled,
        "missing_fields": smtp_settings.missing_fields(),
        "stale": smtp_settings.is_stale,
        "stale_hint": _stale_hint() if smtp_settings.is_stale else "",
        "live": bool(live),
        "live_since": live.promoted_at.isoformat() if live else None,
        "live_differs": smtp_settings.live_differs,
        "live_note": "",
        "unsent_count": smtp_settings.unsent_count,
        "outbox": _outbox_summary(),
        "events": [_event_row(row) for row in recent],
    }
    if smtp_settings.live_differs and value == status.FAILED:
        report["live_note"] = _(
            "Mail is still being sent with the last working settings "
            "(in use since %(since)s)."
        ) % {"since": date_format(localtime(live.promoted_at), "SHORT_DATETIME_FORMAT")}
    elif smtp_settings.live_differs and value == status.RUNNING:
        report["live_note"] = _(
            "Until the test succeeds, mail is sent with the last working settings."
        )
    return report
