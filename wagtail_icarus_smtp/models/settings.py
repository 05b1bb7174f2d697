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

from .. import conf, providers
from .. import status as states
from ..exceptions import PasswordUnreadable
from ..smtp import crypto

#: The fields a connection test needs; changing one of them makes a new draft version.
CONNECTION_FIELDS = (
    "email",
    "_password_encrypted",
    "host",
    "port",
    "auth_method",
    "oauth_tenant_id",
    "oauth_client_id",
    "_oauth_client_secret_encrypted",
    "_google_service_account_encrypted",
)
#: The ways to log in to the mailbox (``auth_method``).
PASSWORD = "password"  # noqa: S105 (a sign-in method, not a password)
MICROSOFT365 = "microsoft365"
GOOGLE = "google"
#: Per sign-in method: the form fields a complete configuration needs besides e-mail,
#: server and port, and the encrypted columns that hold its secrets.
METHOD_FIELDS = {
    PASSWORD: ("password",),
    MICROSOFT365: ("oauth_tenant_id", "oauth_client_id", "oauth_client_secret"),
    GOOGLE: ("google_service_account",),
}
METHOD_SECRETS = {
    PASSWORD: ("_password_encrypted",),
    MICROSOFT365: ("_oauth_client_secret_encrypted",),
    GOOGLE: ("_google_service_account_encrypted",),
}
#: Form field -> the column that stores it encrypted.
SECRET_COLUMNS = {
    "password": "_password_encrypted",
    "oauth_client_secret": "_oauth_client_secret_encrypted",
    "google_service_account": "_google_service_account_encrypted",
}


class SendLimitPeriod(models.TextChoices):
    HOUR = providers.PER_HOUR, _("per hour")
    MINUTE = providers.PER_MINUTE, _("per minute")


class AuthMethod(models.TextChoices):
    PASSWORD = PASSWORD, _("Password")
    MICROSOFT365 = MICROSOFT365, _("Microsoft 365 (OAuth 2.0, app registration)")
    GOOGLE = GOOGLE, _("Google Workspace (OAuth 2.0, service account)")


class OAuthFields(models.Model):
    """What OAuth needs, on the draft and on the live configuration alike."""

    auth_method = models.CharField(
        _("Sign-in method"),
        max_length=20,
        choices=AuthMethod.choices,
        default=PASSWORD,
        help_text=_("How the site logs in to the mailbox."),
    )
    oauth_tenant_id = models.CharField(
        _("Tenant ID"),
        max_length=100,
        blank=True,
        help_text=_(
            "Directory (tenant) ID of your Microsoft 365 organisation, or its domain "
            "(e.g. contoso.onmicrosoft.com)."
        ),
    )
    oauth_client_id = models.CharField(
        _("Client ID"),
        max_length=100,
        blank=True,
        help_text=_("Application (client) ID of the app registration."),
    )
    _oauth_client_secret_encrypted = models.TextField(
        blank=True, editable=False, db_column="oauth_client_secret_encrypted"
    )
    _google_service_account_encrypted = models.TextField(
        blank=True, editable=False, db_column="google_service_account_encrypted"
    )

    class Meta:
        abstract = True


#: How many status events the status report shows (and reads in one query).
RECENT_EVENTS = 10


@register_setting(icon="mail")
class SmtpSettings(BaseGenericSetting, OAuthFields):
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
    oauth_secret_expires = models.DateField(
        _("Client secret expires"),
        null=True,
        blank=True,
        help_text=_(
            "Optional: the expiry date shown next to the client secret in the app "
            "registration. You are warned 30 and 7 days before."
        ),
    )
    send_limit = models.PositiveIntegerField(
        _("max. e-mails"),
        null=True,
        blank=True,
        help_text=_(
            "The most e-mails your provider lets this mailbox send per hour or minute; "
            "the site sends no faster. Filled in from the provider's documentation when "
            "you pick a provider; empty: no limit."
        ),
    )
    send_limit_period = models.CharField(
        _("per"),
        max_length=10,
        choices=SendLimitPeriod.choices,
        default=providers.PER_HOUR,
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

    #: Read with the row (``load()``): the live configuration and the deliverability
    #: report (the settings page shows both).
    select_related = ["live", "deliverability"]

    class Meta:
        verbose_name = _("SMTP settings")
        verbose_name_plural = _("SMTP settings")

    def __str__(self):
        return str(self._meta.verbose_name)

    # -- completeness ------------------------------------------------------------------

    def missing_fields(self):
        """Names of the required form fields that are still empty (those of the chosen
        sign-in method)."""
        values = {"email": self.email, "host": self.host, "port": self.port}
        for name in METHOD_FIELDS[self.method]:
            values[name] = getattr(self, SECRET_COLUMNS.get(name, name))
        order = ("email", *METHOD_FIELDS[self.method], "host", "port")
        return [name for name in order if not values[name]]

    @property
    def method(self):
        return self.auth_method if self.auth_method in METHOD_FIELDS else PASSWORD

    @property
    def secret_field(self):
        """The form field of the chosen method's secret (password, client secret, key)."""
        return METHOD_FIELDS[self.method][-1]

    @property
    def send_rate(self):
        """``(count, seconds)``: at most ``count`` e-mails per window of ``seconds``;
        ``()`` when no limit is set."""
        if not self.send_limit:
            return ()
        window = providers.WINDOW_SECONDS.get(self.send_limit_period, 3600)
        return (self.send_limit, window)

    def connection_data(self):
        return tuple(getattr(self, name) for name in CONNECTION_FIELDS)

    @property
    def password_readable(self):
        """The stored secret of the chosen sign-in method can be decrypted (decrypted
        once per stored value)."""
        stored = getattr(self, METHOD_SECRETS[self.method][0])
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
                if event.version == self.version and not event.kind:  # not a switch row
                    return event
            if len(self.recent_events) < RECENT_EVENTS:
                return None  # every event was read: none of this version
        events = self.events.filter(version=self.version, kind="")  # not the switch rows
        return events.order_by("-created_at", "-pk").first()

    def last_test(self):
        """The newest finished test (complete or failed) of any version, or ``None``."""
        for event in self.recent_events:
            if event.status in (states.COMPLETE, states.FAILED) and not event.kind:
                return event
        if len(self.recent_events) < RECENT_EVENTS:
            return None
        finished = self.events.filter(status__in=(states.COMPLETE, states.FAILED), kind="")
        return finished.order_by("-created_at", "-pk").first()

    def forget_events(self):
        """After a new event was written: read them again when next asked."""
        self.__dict__.pop("current_event", None)
        self.__dict__.pop("recent_events", None)

    @property
    def status(self):
        """One of ``states.Status``: derived from the draft and its newest event."""
        missing = self.missing_fields()
        if {"email", self.secret_field, "host"} <= set(missing):
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

    def record(self, value, *, user=None, category="", reply="", duration=None, kind=""):
        """Add one status event for the current draft version (``kind``: a switch
        event, ``SmtpStatusEvent.Kind``, which leaves the status as it is)."""
        event = self.events.create(
            kind=kind,
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


class SmtpLiveConfiguration(OAuthFields):
    """The last connection data that passed a connection test; what the backend uses."""

    settings = models.OneToOneField(SmtpSettings, on_delete=models.CASCADE, related_name="live")
    email = models.EmailField(max_length=254)
    _password_encrypted = models.TextField(db_column="password_encrypted")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    version = models.PositiveIntegerField()
    promoted_at = models.DateTimeField(default=timezone.now)
    #: The provider answered with a temporary send limit (``rate_limited``): the outbox
    #: sends nothing through this configuration before then (``outbox/pacing``).
    paused_until = models.DateTimeField(_("sending paused until"), null=True, blank=True)
    pause_reply = models.CharField(_("server reply"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("live SMTP configuration")

    def __str__(self):
        return f"{self.email} via {self.host}:{self.port} (version {self.version})"


class SmtpStatusEvent(models.Model):
    """One status transition, for the history the editors see; or sending switched on
    or off (``kind``), which records the status it left unchanged."""

    class Kind(models.TextChoices):
        SENDING_ENABLED = "sending_enabled", _("SMTP mail sending switched on")
        SENDING_DISABLED = "sending_disabled", _("SMTP mail sending switched off")

    settings = models.ForeignKey(SmtpSettings, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("event"), max_length=20, blank=True, choices=Kind.choices)
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
