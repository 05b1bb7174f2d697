"""Provider send limits: the outbox paces itself to the mailbox's limit, and pauses as a
whole when the provider answers that its limit is reached (category ``rate_limited``).

* **Pacing** (``room``): with a limit of N e-mails per hour or minute (the editor's
  "max. e-mails", filled in from the provider's preset), a worker claims at most what
  the window still allows: N minus what went out through this mailbox in the last
  window (``sent_at``, ``sent_via``) minus what other workers hold leased now. The count
  and the claim run in one transaction that first writes the live configuration's row,
  so several workers (PostgreSQL: the row lock; SQLite: the one writer) count one after
  the other and never claim more together than the limit allows.
* **Pause** (``pause_for``): a rate-limit reply stops the batch; the rows not yet tried
  go back unchanged, and nothing is claimed through this configuration before
  ``paused_until`` (the limit's window, or ``ICARUS_SMTP_SEND_PAUSE`` seconds when no
  limit is set). A drain is scheduled for when the pause ends; the first claim after
  it forgets the pause and makes the refused rows due. A pause is not a failure: it
  raises no alert.
"""

import contextlib
import dataclasses
from datetime import timedelta

from django.db import router, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from .. import conf, queue
from ..models import OutboxMessage, SmtpLiveConfiguration
from ..models.outbox import DEFERRED, SENDING
from ..status import Category
from .store import Batch, via


def paused(sending, now=None):
    """When the pause of ``sending``'s configuration ends, or ``None``."""
    now = now or timezone.now()
    until = sending.paused_until
    return until if until is not None and until > now else None


@contextlib.contextmanager
def room(sending, *, token=""):
    """Yield how many rows may be sent now through ``sending``: ``None`` (no limit),
    or a count, ``0`` while paused or while the window is used up — then a drain is
    scheduled for when it reopens. Claim inside the ``with`` block (see the module).

    ``token``: rows leased under it are the caller's own (accepted claimed) and do not
    count as held by another worker."""
    now = timezone.now()
    until = paused(sending, now)
    if until is not None:
        queue.schedule_delivery(until)
        yield 0
        return
    if sending.paused_until is not None:
        _resume(sending, now)
    if not sending.send_rate:
        yield None
        return
    count, seconds = sending.send_rate
    with transaction.atomic(using=router.db_for_write(OutboxMessage)):
        # A write first: the workers count (and claim) one after the other.
        live_rows = SmtpLiveConfiguration.objects.filter(settings_id=sending.settings_pk)
        live_rows.update(paused_until=F("paused_until"))
        until = paused(_fresh(live_rows, sending), now)
        if until is not None:  # another worker heard the refusal meanwhile
            queue.schedule_delivery(until)
            yield 0
            return
        since = now - timedelta(seconds=seconds)
        sent_here = Q(sent_at__gte=since, sent_via=_via(sending))
        leased = Q(status=SENDING, lease_expires_at__gte=now)
        if token:
            leased &= ~Q(lease_token=token)
        used = OutboxMessage.objects.filter(sent_here | leased).count()
        left = max(count - used, 0)
        if not left:
            queue.schedule_delivery(_reopens(sending, since, seconds, now))
        yield left


def _resume(sending, now):
    """The pause has ended: forget it, and the rows the provider refused with its limit
    are due now (their backoff may reach past the pause), once."""
    ended = SmtpLiveConfiguration.objects.filter(
        settings_id=sending.settings_pk, paused_until__lte=now
    ).update(paused_until=None, pause_reply="")
    if ended:
        OutboxMessage.objects.filter(
            status=DEFERRED, last_category=Category.RATE_LIMITED, next_attempt_at__gt=now
        ).update(next_attempt_at=now)


def _fresh(live_rows, sending):
    """``sending`` with the pause as stored now (another worker may have set it)."""
    row = live_rows.values("paused_until").first()
    if row is None:
        return sending
    return dataclasses.replace(sending, paused_until=row["paused_until"])


def _via(sending):
    mailbox = sending.mailbox
    return via(mailbox.username, mailbox.host, mailbox.port)


def _reopens(sending, since, seconds, now):
    """When the oldest e-mail of the window leaves it (a slot opens)."""
    first = OutboxMessage.objects.filter(sent_at__gte=since, sent_via=_via(sending)).aggregate(
        Min("sent_at")
    )["sent_at__min"]
    if first is None:  # the window is full of leased rows: look again after a lease
        return now + timedelta(seconds=min(seconds, conf.get("OUTBOX_LEASE")))
    return first + timedelta(seconds=seconds)


def pause_for(failure, sending):
    """When ``failure`` is a provider's send limit (``rate_limited``): pause the outbox
    for ``sending``'s configuration until the window has passed, schedule the drain for
    then, and return True. Any other failure: False (nothing done)."""
    return pause(failure, sending.settings_pk, sending.send_rate)


def is_send_limit(failure):
    """``failure`` (or ``None``) is a provider's send limit."""
    return failure is not None and failure.category == Category.RATE_LIMITED


def pause(failure, settings_pk, send_rate):
    """``pause_for`` by the settings' primary key and ``send_rate`` (the health check,
    which has no ``Sending``)."""
    if not is_send_limit(failure):
        return False
    seconds = send_rate[1] if send_rate else conf.get("SEND_PAUSE")
    until = timezone.now() + timedelta(seconds=seconds)
    SmtpLiveConfiguration.objects.filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until), settings_id=settings_pk
    ).update(paused_until=until, pause_reply=failure.reply[:500])
    queue.schedule_delivery(until)
    return True


def within(rows, sending):
    """Of ``rows`` accepted claimed (leased to this process, sent in the request): those
    the send limit lets go out now, and how many others went back to the queue (a
    worker sends them when the window reopens, or the pause ends)."""
    token = rows[0].lease_token
    with room(sending, token=token) as allowed:
        if allowed is None or allowed >= len(rows):
            return rows, 0
        Batch(rows, token).give_back(rows[allowed:])
        return rows[:allowed], len(rows) - allowed


def limited(limit, allowed):
    """The smaller of a batch size ``limit`` (``None``: any) and ``allowed``."""
    if allowed is None:
        return limit
    return allowed if limit is None else min(limit, allowed)
