"""What is stored: the editor's draft, the live configuration and the status history.

``SmtpSettings`` holds what the editor saved (the draft). Only a successful connection
test copies its connection data into ``SmtpLiveConfiguration``, which the backend uses.
``SmtpStatusEvent`` rows record every status transition.
"""

from datetime import timedelta

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting

from . import conf, crypto
from . import status as states
from .exceptions import PasswordUnreadable
from .forms import SmtpSettingsForm
from .panels import settings_panels

#: The fields a connection test needs; changing one of them makes a new draft version.
CONNECTION_FIELDS = ("email", "_password_encrypted", "host", "port")


@register_setting(icon="mail")
class SmtpSettings(BaseGenericSetting):
    from_name = models.CharField(
        _("Name"),
        max_length=100,
        blank=True,
        help_text=_("Sender name shown to recipients as “From: Name”."),
    )
    email = models.EmailField(
        _("E-mail"),
        max_length=254,
        blank=True,
        help_text=_("Full address of the mailbox. Also used as the sender address and login."),
    )
    # The leading underscore keeps the ciphertext out of templates ({{ settings... }}).
    _password_encrypted = models.TextField(
        blank=True, editable=False, db_column="password_encrypted"
    )
    host = models.CharField(
        _("SMTP server"),
        max_length=253,
        blank=True,
        help_text=_("Host name of the outgoing mail server. TLS support is required."),
    )
    port = models.PositiveIntegerField(
        _("Port"),
        default=587,
        null=True,
        blank=True,
        help_text=_("Default: 587 (STARTTLS) or 465 (SSL/TLS)."),
    )
    enabled = models.BooleanField(
        _("SMTP mail sending"),
        default=False,
        help_text=_(
            "When switched off, no e-mails are sent — customers receive no booking "
            "confirmations or other notifications."
        ),
    )
    version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Draft version; bumped whenever the connection data changes.",
    )

    select_related = ["live"]
    base_form_class = SmtpSettingsForm
    panels = settings_panels()

    class Meta:
        verbose_name = _("SMTP settings")
        verbose_name_plural = _("SMTP settings")

    # -- completeness ------------------------------------------------------------------

    def missing_fields(self):
        """Names of the required form fields that are still empty."""
        values = {
            "email": self.email,
            "password": self._password_encrypted,
            "host": self.host,
            "port": self.port,
        }
        return [name for name, value in values.items() if not value]

    def connection_data(self):
        return tuple(getattr(self, name) for name in CONNECTION_FIELDS)

    @property
    def password_readable(self):
        try:
            crypto.decrypt(self._password_encrypted)
        except PasswordUnreadable:
            return False
        return True

    # -- status ------------------------------------------------------------------------

    @cached_property
    def current_event(self):
        """The newest status event of the current draft version, or ``None``."""
        return self.events.filter(version=self.version).order_by("-created_at", "-pk").first()

    @property
    def status(self):
        """One of ``states.Status``: derived from the draft and its newest event."""
        missing = self.missing_fields()
        if {"email", "password", "host"} <= set(missing):
            return states.NOT_CONFIGURED
        if missing:
            return states.STARTED
        if not self.password_readable:
            return states.FAILED
        event = self.current_event
        if event is None or event.status not in (states.RUNNING, states.COMPLETE, states.FAILED):
            return states.STARTED
        return event.status

    @property
    def failure_category(self):
        if self.status != states.FAILED:
            return ""
        if not self.password_readable:
            return states.Category.PASSWORD_UNREADABLE
        return self.current_event.category

    @property
    def is_stale(self):
        """A test has been "running" for longer than any worker would take."""
        if self.status != states.RUNNING:
            return False
        limit = conf.get("TIMEOUT") + conf.get("STALE_MARGIN")
        return self.current_event.created_at < timezone.now() - timedelta(seconds=limit)

    def record(self, value, *, user=None, category="", reply="", duration=None):
        """Add one status event for the current draft version."""
        event = self.events.create(
            status=value,
            category=category,
            reply=reply,
            duration=duration,
            triggered_by=user if user is not None and user.is_authenticated else None,
            version=self.version,
        )
        self.__dict__.pop("current_event", None)
        return event

    record.alters_data = True

    @property
    def live_config(self):
        try:
            return self.live
        except SmtpLiveConfiguration.DoesNotExist:
            return None

    @property
    def live_differs(self):
        """A working live configuration exists but is not the current draft."""
        live = self.live_config
        return live is not None and live.version != self.version


class SmtpLiveConfiguration(models.Model):
    """The last connection data that passed a connection test; what the backend uses."""

    settings = models.OneToOneField(SmtpSettings, on_delete=models.CASCADE, related_name="live")
    email = models.EmailField(max_length=254)
    _password_encrypted = models.TextField(db_column="password_encrypted")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    version = models.PositiveIntegerField()
    promoted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("live SMTP configuration")

    def __str__(self):
        return f"{self.email} via {self.host}:{self.port} (version {self.version})"


class SmtpStatusEvent(models.Model):
    """One status transition, for the history the editors see."""

    settings = models.ForeignKey(SmtpSettings, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    status = models.CharField(_("status"), max_length=20, choices=states.Status.choices)
    category = models.CharField(
        _("failure category"), max_length=30, blank=True, choices=states.Category.choices
    )
    reply = models.CharField(_("server reply"), max_length=500, blank=True)
    duration = models.DurationField(_("duration"), null=True, blank=True)
    triggered_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("triggered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    version = models.PositiveIntegerField(_("draft version"))

    class Meta:
        verbose_name = _("SMTP status event")
        verbose_name_plural = _("SMTP status events")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.status} {self.category}".strip()


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
    last_category = models.CharField(
        _("failure category"), max_length=30, blank=True, choices=states.Category.choices
    )
    last_reply = models.CharField(_("server reply"), max_length=500, blank=True)
    body_purged_at = models.DateTimeField(_("body deleted"), null=True, blank=True)

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="icarus_outbox_due")]

    def __str__(self):
        return f"{self.message_id} {self.status}"

    @property
    def pending_recipients(self):
        """Recipients no server has accepted or permanently refused yet."""
        done = ("sent", "failed")
        states = self.recipient_status
        return [r for r in self.recipients if states.get(r, {}).get("status") not in done]


class DeliveryAttempt(models.Model):
    """One try to hand an ``OutboxMessage`` to the mail server, and its outcome."""

    message = models.ForeignKey(
        OutboxMessage, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    status = models.CharField(_("outcome"), max_length=10, choices=OutboxMessage.Status.choices)
    category = models.CharField(
        _("failure category"), max_length=30, blank=True, choices=states.Category.choices
    )
    reply = models.CharField(_("server reply"), max_length=500, blank=True)
    refused = models.JSONField(_("refused recipients"), default=dict, blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.status} {self.category}".strip()


class AlertState(models.Model):
    """Whether one kind of alert is active, and when it was last announced."""

    kind = models.CharField(max_length=30, unique=True)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    def __str__(self):
        return f"{self.kind}: {'active' if self.active else 'ok'}"


class RateLimitCounter(models.Model):
    """Attempts of one action in one fixed time window, shared by every process."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.key}: {self.count}"


class DeliverabilityReport(models.Model):
    """The last deliverability check (SPF, DKIM, DMARC, MX) of the live mailbox's domain.

    ``results`` holds one entry per check as ``deliverability.checks.Result.as_dict``
    (machine codes, translated when shown). ``regressed`` names the checks that passed
    before and fail now: they keep the alert active until they pass again.
    """

    settings = models.OneToOneField(
        SmtpSettings, on_delete=models.CASCADE, related_name="deliverability"
    )
    domain = models.CharField(_("domain"), max_length=253, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    checked_at = models.DateTimeField(_("checked"), null=True, blank=True)
    #: When "Check again" was pressed; a check is pending while it is newer than
    #: ``checked_at``.
    requested_at = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(default=list, blank=True)
    regressed = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("deliverability check")
        verbose_name_plural = _("deliverability checks")

    def __str__(self):
        return f"{self.domain} {self.checked_at:%Y-%m-%d %H:%M}" if self.checked_at else self.domain

    @property
    def pending(self):
        return self.requested_at is not None and (
            self.checked_at is None or self.requested_at > self.checked_at
        )
