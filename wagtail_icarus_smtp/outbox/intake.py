"""Accepting mail: the backend's messages become outbox rows in the caller's transaction;
the editors' actions on rows (release, resend, discard) are here too."""

import dataclasses
from email.policy import SMTP as SMTP_POLICY

from django.utils import timezone

from ..models import OutboxMessage
from ..models.outbox import DEFERRED, FAILED, HELD, QUEUED, SENDING, SENT
from ..models.prepared import PreparedInsert
from .leases import lease


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What the backend hands over for one message (built by Django, see backends)."""

    message_id: str
    subject: str
    sender: str
    has_reply_to: bool
    recipients: list
    mime: bytes


def envelope_of(message):
    """The ``Envelope`` of a Django ``EmailMessage`` that the package writes itself
    (notices to the owners): CRLF line ends, as Django's SMTP backend sends it."""
    try:
        mime = message.message(policy=SMTP_POLICY)
        data = mime.as_bytes()
    except TypeError:  # Django 5.2: message() takes no policy
        mime = message.message()
        data = mime.as_bytes(linesep="\r\n")
    return Envelope(
        message_id=str(mime["Message-ID"]),
        subject=str(message.subject),
        sender="",
        has_reply_to=False,
        recipients=list(message.recipients()),
        mime=data,
    )


#: The backend's insert: built once, the rows' keys are not read back.
_INSERT = PreparedInsert(OutboxMessage)


def accept(envelopes, *, held, claimed=False, bulk=False):
    """Store ``envelopes`` as rows (one query) and return them with their keys; ``held``
    when sending is not possible.

    ``claimed``: the rows are born leased to this process (status ``sending``), which
    delivers them right after the commit without a separate claim; should it die first,
    the lease runs out and a worker takes them over like any abandoned row.
    """
    return OutboxMessage.objects.bulk_create(
        _rows(envelopes, held=held, claimed=claimed, bulk=bulk)
    )


def hand_over(envelopes, *, held, bulk=False):
    """Store ``envelopes`` for the worker (or held) as ``accept`` does, in a statement
    built once; return how many. What a booking runs: no keys are read back."""
    rows = _rows(envelopes, held=held, claimed=False, bulk=bulk)
    _INSERT.run(rows)
    return len(rows)


def _rows(envelopes, *, held, claimed, bulk):
    now = timezone.now()
    status, leased = (HELD if held else QUEUED), {}
    if claimed and not held:
        status, leased = SENDING, lease(now)
    return [
        OutboxMessage(
            created_at=now,
            next_attempt_at=now,
            status=status,
            **leased,
            message_id=envelope.message_id[:255],
            subject=envelope.subject[:255],
            sender=envelope.sender,
            has_reply_to=envelope.has_reply_to,
            recipients=envelope.recipients,
            recipient_list=", ".join(envelope.recipients)[:1000],
            mime=envelope.mime,
            bulk=bulk,
        )
        for envelope in envelopes
    ]


def release(queryset):
    """Editors' "release": held or deferred rows of ``queryset`` become due now."""
    now = timezone.now()
    count = queryset.filter(status__in=(HELD, DEFERRED)).update(status=QUEUED, next_attempt_at=now)
    return count


def resend(queryset):
    """Editors' "resend": sent or failed rows (with a body) go out again to everyone."""
    now = timezone.now()
    return queryset.filter(status__in=(SENT, FAILED), body_purged_at__isnull=True).update(
        status=QUEUED, next_attempt_at=now, recipient_status={}, last_category="", last_reply=""
    )


def discard(queryset, *, reason):
    """Editors' "discard": waiting rows fail now and lose their body."""
    now = timezone.now()
    return queryset.filter(status__in=(QUEUED, HELD, DEFERRED)).update(
        status=FAILED, mime=None, body_purged_at=now, last_category="", last_reply=reason[:500]
    )
