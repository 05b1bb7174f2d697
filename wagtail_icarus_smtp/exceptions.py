"""The package's exceptions: one base class that carries the failure category."""

from django.utils.translation import gettext_lazy as _


class IcarusSmtpError(Exception):
    """Base class. ``category`` is one of ``status.CATEGORIES``."""

    category = "protocol"
    default_message = _("The mail server answered unexpectedly.")

    def __init__(self, message=None, *, category=None, reply=""):
        self.category = category or self.category
        self.reply = reply
        super().__init__(message or self.default_message)


class PasswordUnreadable(IcarusSmtpError, ValueError):
    """The stored password cannot be decrypted with the configured keys."""

    category = "password_unreadable"
    default_message = _("The stored password can no longer be read — enter it again.")
