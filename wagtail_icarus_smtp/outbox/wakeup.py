"""Waking the worker: the request that hands over mail only asks for one drain.

Coalesced through one ``DeliveryWakeup`` row: a wake-up queues a delivery task only
when none is pending (``requested_at`` empty, or older than the lease: that task was
lost), so a burst of bookings costs one task. The worker clears the request when it
starts draining; mail committed after that start asks again. A request that stays
unanswered longer than ``ICARUS_SMTP_WORKER_GRACE`` means no worker is running: the
admin says so, and the mail waits in the outbox.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .. import conf, queue
from ..models import DeliveryWakeup
from ..models.prepared import Prepared

ROW = 1

#: Whether a drain is pending: every hand-over reads it (compiled once).
_REQUESTED = Prepared(lambda: DeliveryWakeup.objects.filter(pk=ROW).values_list("requested_at"))


def wake(now=None):
    """Queue one drain unless one is pending (call after the commit).

    Returns when the pending wake-up was asked if no worker has answered it within
    ``ICARUS_SMTP_WORKER_GRACE`` (no worker is running), else ``None``. While a drain is
    pending this is one ``SELECT``; a write only when a drain is really queued.
    """
    now = now or timezone.now()
    found = _REQUESTED.rows()
    stale = now - timedelta(seconds=conf.get("OUTBOX_LEASE"))
    asked = found[0][0] if found else None
    if asked is not None and asked >= stale:  # a drain is pending: it will see this mail
        grace = now - timedelta(seconds=conf.get("WORKER_GRACE"))
        return asked if asked < grace else None
    with queue.queuing():  # the request and its task: one commit
        if not found:
            _, created = DeliveryWakeup.objects.get_or_create(
                pk=ROW, defaults={"requested_at": now}
            )
        else:  # none pending, or one so old that its task was lost: ask (once, if racing)
            created = DeliveryWakeup.objects.filter(
                Q(requested_at__isnull=True) | Q(requested_at__lt=stale), pk=ROW
            ).update(requested_at=now)
        if created:
            queue.enqueue_now(queue.DELIVER)
    return None


def woken():
    """A worker starts draining: later mail asks again; the worker is alive."""
    now = timezone.now()
    updated = DeliveryWakeup.objects.filter(pk=ROW).update(requested_at=None, worker_seen_at=now)
    if not updated:
        DeliveryWakeup.objects.get_or_create(pk=ROW, defaults={"worker_seen_at": now})


def lingering():
    """A drain stays for more mail: the wake-up counts as asked (bookings only read
    it), and the worker is alive. Cleared by ``woken`` when the drain ends."""
    now = timezone.now()
    DeliveryWakeup.objects.filter(pk=ROW).update(requested_at=now, worker_seen_at=now)


def unanswered_since(now=None):
    """When a wake-up was requested that no worker has picked up within the grace
    period (no worker running), or ``None``."""
    now = now or timezone.now()
    grace = timedelta(seconds=conf.get("WORKER_GRACE"))
    row = DeliveryWakeup.objects.filter(pk=ROW, requested_at__lt=now - grace).first()
    return row.requested_at if row else None
