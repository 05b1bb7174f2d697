"""Status values and failure categories: machine strings, labels, explanations, fixes.

The machine strings are part of the public interface (SPEC §3, §4); the texts are the
seed's wording, in German and English through the locale files.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

NOT_CONFIGURED = "not_configured"
STARTED = "started"
RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"


class Status(models.TextChoices):
    NOT_CONFIGURED = NOT_CONFIGURED, _("Not configured")
    STARTED = STARTED, _("Setup started")
    RUNNING = RUNNING, _("Setup running")
    COMPLETE = COMPLETE, _("Setup complete")
    FAILED = FAILED, _("Setup failed")


#: What each status means and what the editor should do next.
STATUS_ACTIONS = {
    NOT_CONFIGURED: _("No SMTP data stored yet. Fill in all required fields."),
    STARTED: _("Some data is still missing. Complete the missing fields."),
    RUNNING: _("The connection test is in progress. Please wait."),
    COMPLETE: _("The SMTP connection works. Mail can be sent."),
    FAILED: _("The connection could not be established. Check the access data."),
}


class Category(models.TextChoices):
    CONNECTION = "connection", _("Connection failed")
    TIMEOUT = "timeout", _("No answer in time")
    TLS_UNAVAILABLE = "tls_unavailable", _("TLS not offered")
    TLS_HANDSHAKE = "tls_handshake", _("TLS error")
    CERTIFICATE = "certificate", _("Certificate not trusted")
    AUTH = "auth", _("Authentication failed")
    APP_PASSWORD_REQUIRED = "app_password_required", _("App password required")
    AUTH_DISABLED = "auth_disabled", _("SMTP login switched off by the provider")
    SENDER_REJECTED = "sender_rejected", _("Sender address refused")
    HOST_NOT_ALLOWED = "host_not_allowed", _("Server address not allowed")
    PASSWORD_UNREADABLE = "password_unreadable", _("Stored password unreadable")
    OAUTH_TOKEN = "oauth_token", _("Sign-in token refused")
    CREDENTIALS_EXPIRED = "credentials_expired", _("Sign-in credentials expired")
    RATE_LIMITED = "rate_limited", _("Sending limit reached")
    PROTOCOL = "protocol", _("Unexpected server answer")


#: category -> (explanation, fix), the seed's troubleshooting table.
CATEGORY_HELP = {
    Category.CONNECTION: (
        _("The mail server could not be reached: wrong server or port."),
        _("Check the SMTP server and port with your mail provider."),
    ),
    Category.TIMEOUT: (
        _("The mail server did not answer completely within the time limit."),
        _("Check server and port; if they are right, try again later."),
    ),
    Category.TLS_UNAVAILABLE: (
        _("The server does not offer an encrypted (TLS) connection on this port."),
        _("Try the other port (587 or 465). Unencrypted connections are not accepted."),
    ),
    Category.TLS_HANDSHAKE: (
        _("The encrypted (TLS) connection could not be established."),
        _("Try the other port (587 with STARTTLS or 465 with SSL/TLS)."),
    ),
    Category.CERTIFICATE: (
        _("The server's certificate is not trusted or not valid for this server name."),
        _("Use the exact server name from your provider (e.g. smtp.ionos.de)."),
    ),
    Category.AUTH: (
        _("The server rejected the e-mail address or the password."),
        _("Enter the access data again; test them in a separate e-mail program."),
    ),
    Category.APP_PASSWORD_REQUIRED: (
        _("Two-factor authentication is active: the provider requires an app password."),
        _("Create an app-specific password with your provider and enter it here."),
    ),
    Category.AUTH_DISABLED: (
        _("The provider has switched off SMTP login with a password for this mailbox."),
        _("Ask your mail administrator to allow SMTP AUTH for this mailbox."),
    ),
    Category.SENDER_REJECTED: (
        _("The server does not accept this mailbox as the sender address."),
        _("Check that the e-mail address is exactly the one of your mailbox at the provider."),
    ),
    Category.HOST_NOT_ALLOWED: (
        _("This server address is not allowed for outgoing mail on this site."),
        _("Enter the public SMTP server of your mail provider."),
    ),
    Category.PASSWORD_UNREADABLE: (
        _("The stored password can no longer be read — enter it again."),
        _("Type the mailbox password into the password field and save."),
    ),
    Category.OAUTH_TOKEN: (
        _(
            "Microsoft or Google refused to issue a sign-in token: tenant, application, "
            "client secret or delegation do not match."
        ),
        _(
            "Compare tenant ID, client ID and client secret (or the service account key) "
            "with the app registration; see the setup guide."
        ),
    ),
    Category.CREDENTIALS_EXPIRED: (
        _("The client secret or key has expired or was revoked."),
        _(
            "Create a new client secret (or key), enter its value here together with the "
            "new expiry date, and save."
        ),
    ),
    Category.RATE_LIMITED: (
        _(
            "The provider limits how many e-mails this mailbox may send in a given time, "
            "and the limit is reached for now."
        ),
        _(
            "Nothing to change: the e-mails wait and go out by themselves once the time "
            "window has passed. If this happens often, enter your provider's limit in "
            "“max. e-mails”."
        ),
    ),
    Category.PROTOCOL: (
        _("The mail server answered unexpectedly."),
        _("Check the server's reply; contact your provider if the problem persists."),
    ),
}


def category_help(category):
    """Return ``(label, explanation, fix)`` for a category value (or empty strings)."""
    if not category:
        return ("", "", "")
    label = Category(category).label
    explanation, fix = CATEGORY_HELP[category]
    return (label, explanation, fix)


#: category -> the form fields the editor should look at (``aria-describedby`` on them
#: points to the failure's explanation and fix).
CATEGORY_FIELDS = {
    Category.CONNECTION: ("host", "port"),
    Category.TIMEOUT: ("host", "port"),
    Category.TLS_UNAVAILABLE: ("port",),
    Category.TLS_HANDSHAKE: ("port",),
    Category.CERTIFICATE: ("host",),
    Category.AUTH: ("email", "password"),
    Category.APP_PASSWORD_REQUIRED: ("password",),
    Category.AUTH_DISABLED: ("email",),
    Category.SENDER_REJECTED: ("email",),
    Category.HOST_NOT_ALLOWED: ("host",),
    Category.PASSWORD_UNREADABLE: ("password",),
    Category.RATE_LIMITED: ("send_limit",),
    Category.PROTOCOL: (),
}
