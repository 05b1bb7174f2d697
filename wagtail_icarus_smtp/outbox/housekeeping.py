"""Housekeeping and reporting: purge old bodies and rows, count what waits."""

from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from .. import conf
from ..models import OutboxMessage
from ..models.outbox import DEFERRED, FAILED, HELD, QUEUED, SENT, Status


def purge(now=None):
    """Delete bodies after ``BODY_RETENTION`` days, finished rows after ``LOG_RETENTION``.

    Waiting rows keep their body (it is still needed). Returns ``(bodies, rows)``.
    """
    now = now or timezone.now()
    body_limit = now - timedelta(days=conf.get("BODY_RETENTION"))
    bodies = OutboxMessage.objects.filter(
        created_at__lt=body_limit, body_purged_at__isnull=True, status__in=(SENT, FAILED)
    ).update(mime=None, body_purged_at=now)
    log_limit = now - timedelta(days=conf.get("LOG_RETENTION"))
    _, deleted = OutboxMessage.objects.filter(
        created_at__lt=log_limit, status__in=(SENT, FAILED)
    ).delete()
    return bodies, deleted.get(OutboxMessage._meta.label, 0)


def summary(now=None):
    """What the status bar and the operator command show (JSON-serialisable); one query."""
    now = now or timezone.now()
    found = OutboxMessage.objects.order_by().aggregate(
        **{value: Count("pk", filter=Q(status=value)) for value in Status.values},
        oldest=Min("created_at", filter=Q(status__in=(QUEUED, HELD, DEFERRED))),
    )
    oldest = found.pop("oldest")
    by_status = {value: found[value] for value in Status.values}
    return {
        "counts": by_status,
        "held": by_status[HELD],
        "deferred": by_status[DEFERRED],
        "waiting": by_status[QUEUED] + by_status[HELD] + by_status[DEFERRED],
        "failed": by_status[FAILED],
        "oldest_waiting": oldest.isoformat() if oldest else None,
        "oldest_age_seconds": round((now - oldest).total_seconds()) if oldest else None,
    }
