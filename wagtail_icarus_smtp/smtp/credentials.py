"""Credentials: the one place that turns a stored configuration into a login.

The connection test (a draft), delivery and the test e-mail (the live configuration),
the health check and the notices to the owners all build their ``Mailbox`` here, so a
new kind of credential plugs in at one place.
"""

from django.views.decorators.debug import sensitive_variables

from . import crypto, transport


@sensitive_variables("password")
def mailbox(config):
    """The ``Mailbox`` for ``config``: a settings draft or a live configuration row
    (anything with ``host``, ``port``, ``email`` and ``_password_encrypted``).

    Raises ``PasswordUnreadable`` when the stored password cannot be decrypted.
    """
    password = crypto.decrypt(config._password_encrypted)
    return transport.Mailbox(config.host, config.port, config.email, password)


def secrets(mailbox):
    """What must be masked in any text about an exchange as ``mailbox``."""
    return [mailbox.password] if mailbox is not None else []
