"""The test e-mail in the delivery log: one finished row per test, marked as a test.

The row is born ``sent`` or ``failed`` and is never claimed, released or re-sent: it
only records that the test happened, through which configuration, and how it ended.
"""

from django.utils import timezone

from .models import DeliveryAttempt, OutboxMessage


def via(mailbox):
    """How the delivery log names a configuration (as ``outbox.via``)."""
    return f"{mailbox.username} @ {mailbox.host}:{mailbox.port}"


def record(message, mime, *, to, mailbox, ok, category="", reply=""):
    """Add the row and its one attempt for a test e-mail sent to ``to``."""
    now = timezone.now()
    status = OutboxMessage.Status.SENT if ok else OutboxMessage.Status.FAILED
    row = OutboxMessage.objects.create(
        created_at=now,
        next_attempt_at=now,
        status=status,
        is_test=True,
        message_id=str(message.extra_headers.get("Message-ID", ""))[:255],
        subject=str(message.subject)[:255],
        recipients=[to],
        recipient_list=to[:1000],
        recipient_status={to: {"status": status.value, "reply": reply[:500]}},
        mime=mime,
        attempts=1,
        sent_at=now if ok else None,
        sent_via=via(mailbox)[:300],
        last_category=category,
        last_reply=reply[:500],
    )
    DeliveryAttempt.objects.create(
        message=row, created_at=now, status=status, category=category, reply=reply[:500]
    )
    return row
