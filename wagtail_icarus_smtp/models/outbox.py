"""What the outbox stores: every message handed to the backend, and each delivery attempt."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import status as states
from ..smtp.failures import MAX_REPLY


def category_field():
    """The failure category of an outcome (a message's last one, an attempt's)."""
    return models.CharField(
        _("failure category"), max_length=30, blank=True, choices=states.Category.choices
    )


def reply_field():
    """The server's reply (or the error text) of an outcome, masked and shortened."""
    return models.CharField(_("server reply"), max_length=MAX_REPLY, blank=True)


class OutboxMessage(models.Model):
    """One message the site handed to the backend: kept until it is delivered.

    ``mime`` holds the message exactly as Django built it (with the caller's own From);
    the sender is rewritten to the mailbox when it is delivered, so mail held while the
    mailbox changed goes out From the mailbox in use then. ``recipient_status`` maps
    each recipient to ``{"status": "sent" | "deferred" | "failed", "reply": …}`` once a
    server answered for it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        HELD = "held", _("Held")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEFERRED = "deferred", _("Deferred")
        FAILED = "failed", _("Failed")

    created_at = models.DateTimeField(_("accepted"), default=timezone.now, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    message_id = models.CharField(_("Message-ID"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    sender = models.TextField(_("original sender"), blank=True)
    has_reply_to = models.BooleanField(default=False)
    recipients = models.JSONField(_("recipients"), default=list)
    recipient_list = models.CharField(_("recipients"), max_length=1000, blank=True)
    recipient_status = models.JSONField(default=dict, blank=True)
    mime = models.BinaryField(null=True, editable=False)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    lease_token = models.CharField(max_length=32, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    sent_via = models.CharField(
        _("sent via"),
        max_length=300,
        blank=True,
        help_text="Login, server and port of the configuration that delivered the message.",
    )
    last_category = category_field()
    last_reply = reply_field()
    body_purged_at = models.DateTimeField(_("body deleted"), null=True, blank=True)
    is_test = models.BooleanField(
        _("test e-mail"),
        default=False,
        help_text="Sent from the settings page's test e-mail: logged, never queued or re-sent.",
    )
    bulk = models.BooleanField(
        _("bulk"),
        default=False,
        help_text="Handed over with others in one call (a newsletter): sent after single "
        "messages such as bookings and password resets.",
    )

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="icarus_outbox_due"),
            # The send limit counts what went out in its window (``outbox/pacing``).
            models.Index(fields=["sent_at"], name="icarus_outbox_sent"),
        ]

    def __str__(self):
        return f"{self.message_id} {self.status}"

    @property
    def pending_recipients(self):
        """Recipients no server has accepted or permanently refused yet."""
        done = ("sent", "failed")
        states = self.recipient_status
        return [r for r in self.recipients if states.get(r, {}).get("status") not in done]


class DeliveryWakeup(models.Model):
    """One row: whether a delivery task is pending (coalesced wake-ups) and when a
    worker last picked one up. A request that hands over mail wakes the worker only
    when no task is pending, so a burst of bookings queues one task, not one each."""

    requested_at = models.DateTimeField(null=True, blank=True)
    worker_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"requested {self.requested_at}, worker seen {self.worker_seen_at}"


class DeliveryAttempt(models.Model):
    """One try to hand an ``OutboxMessage`` to the mail server, and its outcome."""

    message = models.ForeignKey(
        OutboxMessage, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    status = models.CharField(_("outcome"), max_length=10, choices=OutboxMessage.Status.choices)
    category = category_field()
    reply = reply_field()
    refused = models.JSONField(_("refused recipients"), default=dict, blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.status} {self.category}".strip()


Status = OutboxMessage.Status
QUEUED, HELD, SENDING, SENT, DEFERRED, FAILED = (
    Status.QUEUED,
    Status.HELD,
    Status.SENDING,
    Status.SENT,
    Status.DEFERRED,
    Status.FAILED,
)
#: Statuses that still wait for delivery.
WAITING = (QUEUED, HELD, DEFERRED, SENDING)
