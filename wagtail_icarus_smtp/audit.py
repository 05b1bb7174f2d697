"""Audit trail in Wagtail's own log (Reports → Site history): who did what, when.

Entries name the fields that changed, never their values — except where mail goes:
server, port and login are recorded old → new (they are no secret, and they are what
an owner needs to see after a takeover attempt).
"""

from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log as wagtail_log

PREFIX = "wagtail_icarus_smtp."

ACTIONS = {
    "credentials_changed": _("SMTP access data changed"),
    "sending_enabled": _("SMTP mail sending enabled"),
    "sending_disabled": _("SMTP mail sending disabled"),
    "test_started": _("SMTP connection test started"),
    "test_succeeded": _("SMTP connection test succeeded"),
    "test_failed": _("SMTP connection test failed"),
    "test_email_sent": _("SMTP test e-mail sent"),
    "test_email_failed": _("SMTP test e-mail failed"),
    "key_rotated": _("SMTP password re-encrypted with the current key"),
    "scrubbed": _("Stored SMTP credentials removed"),
    "target_change_notified": _("Site owners notified of the changed mail server"),
    "outbox_released": _("Held e-mail released for sending"),
    "outbox_resent": _("E-mail queued to be sent again"),
    "outbox_discarded": _("Waiting e-mail discarded"),
    "draft_discarded": _("SMTP draft discarded, the settings in use restored"),
}

#: Public field names for the stored columns (the password column is encrypted).
FIELD_NAMES = {
    "_password_encrypted": "password",
    "_oauth_client_secret_encrypted": "oauth_client_secret",
    "_google_service_account_encrypted": "google_service_account",
}


def register(actions):
    """``register_log_actions`` hook body."""
    for name, label in ACTIONS.items():
        actions.register_action(PREFIX + name, label, label)


def log(smtp_settings, action, *, user=None, **data):
    """Write one log entry for ``smtp_settings``; ``data`` must hold no secret."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if user is not None and not user.is_authenticated:
        user = None
    return wagtail_log(instance=smtp_settings, action=PREFIX + action, user=user, data=data)


#: The connection target: recorded old → new when it changes. The tenant and the app
#: decide whose mailbox an OAuth secret opens; with a password they play no part.
TARGET = ("host", "port", "email", "auth_method", "oauth_tenant_id", "oauth_client_id")
OAUTH_TARGET = ("oauth_tenant_id", "oauth_client_id")


def target(values):
    """The target tuple (``TARGET``) of a mapping: a model's ``__dict__`` or cleaned data."""
    method = values.get("auth_method") or "password"
    return tuple(
        None if name in OAUTH_TARGET and method == "password" else (values.get(name) or None)
        for name in TARGET
    )


def target_change(previous, smtp_settings):
    """``{"old": {...}, "new": {...}}`` for a changed target (``previous`` as made by
    ``target()``), else ``{}``. Never a secret."""
    if previous is None:
        return {}
    old = dict(zip(TARGET, previous, strict=True))
    new = dict(zip(TARGET, target(smtp_settings.__dict__), strict=True))
    if old == new:
        return {}
    if old["auth_method"] == new["auth_method"] == "password":  # server, port, login
        old, new = ({name: values[name] for name in TARGET[:3]} for values in (old, new))
    return {"old": old, "new": new}


def field_names(names):
    return [FIELD_NAMES.get(name, name) for name in names]
