"""The live configuration: promoted from a tested draft, read by the email backend."""

import dataclasses
import time
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models.signals import post_delete, post_save

from .. import signals, status
from ..exceptions import PasswordUnreadable
from ..models import SmtpLiveConfiguration, SmtpSettings
from ..models.prepared import Prepared
from ..smtp import credentials, headers, transport

#: The OAuth columns a draft hands to its live configuration.
OAUTH_COLUMNS = (
    "auth_method",
    "oauth_tenant_id",
    "oauth_client_id",
    "_oauth_client_secret_encrypted",
    "_google_service_account_encrypted",
)

#: Why nothing can be sent right now (``Sending.reason``).
DISABLED = "disabled"
NOT_CONFIGURED = "not_configured"
PASSWORD_UNREADABLE = "password_unreadable"  # noqa: S105 (a reason, not a password)
UNSAFE_SENDER = "unsafe_sender"


def promote(settings_pk, version, *, duration, user=None):
    """Make draft ``version`` live, in one transaction, unless a newer draft exists.

    Returns the ``complete`` event, or ``None`` when the version is no longer current.
    """
    with transaction.atomic():
        smtp_settings = SmtpSettings.objects.select_for_update().get(pk=settings_pk)
        if smtp_settings.version != version:
            return None
        # The provider's send limit belongs to a mailbox: another one starts unpaused.
        SmtpLiveConfiguration.objects.filter(settings=smtp_settings).exclude(
            email=smtp_settings.email, host=smtp_settings.host, port=smtp_settings.port
        ).update(paused_until=None, pause_reply="")
        SmtpLiveConfiguration.objects.update_or_create(
            settings=smtp_settings,
            defaults={
                "email": smtp_settings.email,
                "_password_encrypted": smtp_settings._password_encrypted,
                "host": smtp_settings.host,
                "port": smtp_settings.port,
                **{name: getattr(smtp_settings, name) for name in OAUTH_COLUMNS},
                "version": version,
            },
        )
        transaction.on_commit(lambda: signals.sending_possible.send(sender=SmtpSettings))
        return smtp_settings.record(
            status.COMPLETE, user=user, duration=timedelta(seconds=duration)
        )


@dataclasses.dataclass(frozen=True)
class Sending:
    """What the backend needs for one connection: a mailbox, or why there is none."""

    mailbox: transport.Mailbox | None
    from_name: str = ""
    reason: str = ""
    settings_pk: int | None = None
    #: ``(count, seconds)``: the outbox sends at most ``count`` e-mails per ``seconds``
    #: through this mailbox (the editor's "max. e-mails"); ``()``: no limit.
    send_rate: tuple = ()
    #: The provider answered that its send limit is reached: nothing goes out before.
    paused_until: datetime | None = None


#: The columns of the settings row and of its live configuration.
_SETTINGS_COLUMNS = [field.attname for field in SmtpSettings._meta.concrete_fields]
_LIVE_COLUMNS = [field.attname for field in SmtpLiveConfiguration._meta.concrete_fields]

#: The settings row (the first, as ``SmtpSettings.load()`` finds it) and the live
#: configuration of the lowest settings row: two statements without a join, compiled
#: once. With sending off only the first runs.
_SETTINGS = Prepared(
    lambda: SmtpSettings.objects.order_by("pk").values_list(*_SETTINGS_COLUMNS)[:1]
)
_LIVE = Prepared(
    lambda: SmtpLiveConfiguration.objects.order_by("settings_id").values_list(*_LIVE_COLUMNS)[:1]
)


def load():
    """Read the settings and, when sending is on, the live configuration (none is
    created)."""
    found = _SETTINGS.rows()
    if not found:
        return Sending(None, reason=NOT_CONFIGURED)
    db = router.db_for_read(SmtpSettings)
    smtp_settings = SmtpSettings.from_db(db, _SETTINGS_COLUMNS, found[0])
    if not smtp_settings.enabled:
        return Sending(None, reason=DISABLED, settings_pk=smtp_settings.pk)
    rows = _LIVE.rows()
    live = SmtpLiveConfiguration.from_db(db, _LIVE_COLUMNS, rows[0]) if rows else None
    if live is None or live.settings_id != smtp_settings.pk:
        return Sending(None, reason=NOT_CONFIGURED, settings_pk=smtp_settings.pk)
    return through(smtp_settings, live)


#: Seconds for which a usable configuration read by this process is taken again for
#: mail handed to the worker (``hold_reason``).
REUSE_SECONDS = 1.0


class _Usable:
    """When this process (any thread) last read a configuration that could send
    (``time.monotonic()``)."""

    at = float("-inf")


_usable = _Usable()


def hold_reason():
    """Why mail handed to the worker must be held now, or ``""`` when it can be sent.

    A usable configuration read by this process less than ``REUSE_SECONDS`` ago is
    taken again without a query: a burst of bookings reads it once a second. That is
    safe because the worker reads the configuration again before it sends and holds
    the mail if sending has become impossible meanwhile. A configuration that cannot
    send is read each time, so mail is queued as soon as sending is possible again;
    and a change saved in this process applies at once (``forget``).
    """
    if time.monotonic() - _usable.at < REUSE_SECONDS:
        return ""
    sending = load()
    if sending.mailbox is None:
        return sending.reason
    _usable.at = time.monotonic()
    return ""


def forget(**kwargs):
    """The stored settings or live configuration changed: read them again."""
    _usable.at = float("-inf")


post_save.connect(forget, sender=SmtpSettings, dispatch_uid="icarus-smtp-live-settings")
post_save.connect(forget, sender=SmtpLiveConfiguration, dispatch_uid="icarus-smtp-live-saved")
post_delete.connect(forget, sender=SmtpLiveConfiguration, dispatch_uid="icarus-smtp-live-deleted")


def through(smtp_settings, row):
    """A ``Sending`` through ``row`` (the live configuration, or a complete draft: the
    settings themselves) under the page's display name — or why it cannot send: an
    unsafe display name, a password that cannot be decrypted."""
    if not headers.is_safe_sender(smtp_settings.from_name, row.email):
        return Sending(None, reason=UNSAFE_SENDER, settings_pk=smtp_settings.pk)
    try:
        mailbox = credentials.mailbox(row)
    except PasswordUnreadable:
        return Sending(None, reason=PASSWORD_UNREADABLE, settings_pk=smtp_settings.pk)
    return Sending(
        mailbox,
        from_name=smtp_settings.from_name,
        settings_pk=smtp_settings.pk,
        send_rate=smtp_settings.send_rate,
        paused_until=getattr(row, "paused_until", None),  # a draft has no pause of its own
    )


def sending_for(live, *, from_name=""):
    """A ``Sending`` through the live configuration row ``live``, whether sending is
    switched on or not (the health check, notices to the owners).

    Raises ``PasswordUnreadable`` when the stored password cannot be decrypted.
    """
    return Sending(
        credentials.mailbox(live),
        from_name=from_name,
        settings_pk=live.settings_id,
        paused_until=live.paused_until,
    )
