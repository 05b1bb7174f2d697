"""Claiming: a worker leases a batch of due rows, so two workers never send the same row.

``SELECT … FOR UPDATE SKIP LOCKED`` and an ``UPDATE`` where the database has it, one
``UPDATE … WHERE pk IN (SELECT …)`` on SQLite (its writers are serialised). A lease that
ran out (worker killed) makes the row claimable again — at least once, never zero
times; the Message-ID stays the same.
"""

import uuid
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Length
from django.utils import timezone

from .. import conf
from ..models import OutboxMessage
from ..models.outbox import DEFERRED, QUEUED, SENDING


def claimable(now):
    due = Q(status__in=(QUEUED, DEFERRED), next_attempt_at__lte=now)
    abandoned = Q(status=SENDING, lease_expires_at__lt=now)
    return due | abandoned


def anything_due():
    """Whether a row is due now (one query)."""
    return OutboxMessage.objects.filter(claimable(timezone.now())).exists()


def lease(now):
    return {
        "lease_token": uuid.uuid4().hex,
        "lease_expires_at": now + timedelta(seconds=conf.get("OUTBOX_LEASE")),
    }


def claim(*, ids=None, limit=None):
    """Claim due rows (oldest first) for this worker; return them with their lease token.

    ``ids`` restricts the claim to rows just accepted by this process.
    """
    now = timezone.now()
    leased = {"status": SENDING, **lease(now)}
    token = leased["lease_token"]
    candidates = OutboxMessage.objects.filter(claimable(now))
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    # Single messages (bookings, resets) before bulk ones; oldest first within each.
    candidates = candidates.order_by("bulk", "created_at", "pk").values_list("pk", flat=True)
    db = router.db_for_write(OutboxMessage)
    if connections[db].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=db):
            pks = list(candidates.select_for_update(skip_locked=True)[:limit])
            OutboxMessage.objects.filter(claimable(now), pk__in=pks).update(**leased)
    else:
        # SQLite: one UPDATE picks and leases the rows. Writers are serialised, so no
        # other worker claims them in between (a separate SELECT could lose that race
        # and leave this worker with an empty batch while due rows remain).
        OutboxMessage.objects.filter(pk__in=candidates[:limit]).update(**leased)
    rows = OutboxMessage.objects.filter(lease_token=token, status=SENDING).defer("mime")
    rows = rows.annotate(mime_size=Length("mime"))  # bodies are read in chunks by size
    return list(rows.order_by("bulk", "created_at", "pk")), token


#: A further connection is opened for at least this many messages each: below that,
#: its TLS handshake and login cost more than sending beside the first one saves.
CONNECTION_SHARE = 20

#: Messages this large on average (attachments) go over one connection: bandwidth, not
#: round trips, limits them, and every further connection holds messages in memory of
#: its own (the memory bench, 1 MB each: a peak of 141 MB with one, 157 MB with two).
LARGE_MESSAGE = 256 * 1024


def connections_wanted(batch_size, maximum):
    """``(extra, limit, due)``: how many more connections a drain opens besides its own,
    how many rows each claims at a time, and how many rows are due (``None`` when more
    than were counted, or not counted). All workers together stay within ``maximum``
    (connections in use are the unexpired leases of batches being sent); the due rows
    are shared out, ``CONNECTION_SHARE`` at least each, ``batch_size`` at most; large
    messages (``LARGE_MESSAGE`` on average) get no further connection. Two queries."""
    now = timezone.now()
    in_use = (
        OutboxMessage.objects.filter(status=SENDING, lease_expires_at__gte=now)
        .values("lease_token")
        .distinct()
        .count()
    )
    room = maximum - in_use - 1
    if room <= 0:
        return 0, batch_size, None
    enough = max(batch_size, CONNECTION_SHARE) * (room + 1)
    counted = OutboxMessage.objects.filter(claimable(now)).order_by()[: enough + 1]
    found = counted.aggregate(due=Count("pk"), size=Sum(Length("mime")))
    due = found["due"]
    count = min(room + 1, max(due // CONNECTION_SHARE, 1))
    if due and (found["size"] or 0) / due >= LARGE_MESSAGE:
        count = 1
    limit = min(batch_size, -(-due // count)) if count > 1 else batch_size
    return count - 1, limit, due if due <= enough else None
