"""Credentials: the one place that turns a stored configuration into a login.

The connection test (a draft), delivery and the test e-mail (the live configuration),
the health check and the notices to the owners all build their ``Mailbox`` here, so a
new kind of credential plugs in at one place.

The sign-in method (``auth_method``) decides the login: ``password`` (AUTH PLAIN/LOGIN),
``microsoft365`` or ``google`` (``AUTH XOAUTH2`` with a token from ``oauth``; the token
itself is fetched inside the exchange, under its deadline, and cached there).
"""

from django.views.decorators.debug import sensitive_variables

from . import crypto, oauth, transport

MICROSOFT365 = "microsoft365"
GOOGLE = "google"


@sensitive_variables()
def mailbox(config):
    """The ``Mailbox`` for ``config``: a settings draft or a live configuration row
    (anything with ``host``, ``port``, ``email``, ``auth_method`` and the encrypted
    secret columns).

    Raises ``PasswordUnreadable`` when the stored secret cannot be decrypted.
    """
    method = getattr(config, "auth_method", "password")
    if method == MICROSOFT365:
        source = oauth.MicrosoftApp(
            config.oauth_tenant_id,
            config.oauth_client_id,
            crypto.decrypt(config._oauth_client_secret_encrypted),
        )
        return transport.Mailbox(config.host, config.port, config.email, "", oauth=source)
    if method == GOOGLE:
        key = crypto.decrypt(config._google_service_account_encrypted)
        source = oauth.GoogleServiceAccount(key, config.email)
        return transport.Mailbox(config.host, config.port, config.email, "", oauth=source)
    password = crypto.decrypt(config._password_encrypted)
    return transport.Mailbox(config.host, config.port, config.email, password)


def secrets(mailbox):
    """What must be masked in any text about an exchange as ``mailbox``."""
    if mailbox is None:
        return []
    if mailbox.oauth is not None:
        return [secret for secret in mailbox.oauth.secrets if secret]
    return [mailbox.password]
