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

from .. import conf
from .. import status as states
from ..exceptions import PasswordUnreadable
from ..smtp import crypto

#: The fields a connection test needs; changing one of them makes a new draft version.
CONNECTION_FIELDS = ("email", "_password_encrypted", "host", "port")
#: How many status events the status report shows (and reads in one query).
RECENT_EVENTS = 10


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
        """The stored password can be decrypted (decrypted once per stored value)."""
        stored = self._password_encrypted
        known = self.__dict__.get("_readable")
        if known is None or known[0] != stored:
            try:
                crypto.decrypt(stored)
            except PasswordUnreadable:
                known = (stored, False)
            else:
                known = (stored, True)
            self.__dict__["_readable"] = known
        return known[1]

    # -- status ------------------------------------------------------------------------

    @cached_property
    def recent_events(self):
        """The newest ``RECENT_EVENTS`` status events, newest first (one query)."""
        return list(self.events.select_related("triggered_by")[:RECENT_EVENTS])

    @cached_property
    def current_event(self):
        """The newest status event of the current draft version, or ``None``."""
        if "recent_events" in self.__dict__:  # read already (the status report)
            for event in self.recent_events:
                if event.version == self.version:
                    return event
            if len(self.recent_events) < RECENT_EVENTS:
                return None  # every event was read: none of this version
        return self.events.filter(version=self.version).order_by("-created_at", "-pk").first()

    def last_test(self):
        """The newest finished test (complete or failed) of any version, or ``None``."""
        for event in self.recent_events:
            if event.status in (states.COMPLETE, states.FAILED):
                return event
        if len(self.recent_events) < RECENT_EVENTS:
            return None
        finished = self.events.filter(status__in=(states.COMPLETE, states.FAILED))
        return finished.order_by("-created_at", "-pk").first()

    def forget_events(self):
        """After a new event was written: read them again when next asked."""
        self.__dict__.pop("current_event", None)
        self.__dict__.pop("recent_events", None)

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
        self.forget_events()
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
