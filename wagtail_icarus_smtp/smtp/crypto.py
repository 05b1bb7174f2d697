"""Encryption at rest for the mailbox password (Fernet / MultiFernet).

Keys come from ``ICARUS_SMTP_ENCRYPTION_KEYS`` (the first encrypts, all decrypt) or,
when that is unset, are derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` with a
salt of our own, so rotating Django's secret key the documented way keeps working.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from .. import conf
from ..exceptions import PasswordUnreadable

SALT = b"wagtail_icarus_smtp.crypto.password.v1"

_fernet = None


def reset(**kwargs):
    """Forget the cached keys (called when settings change)."""
    global _fernet
    _fernet = None


conf.reloaded.connect(reset, dispatch_uid="wagtail_icarus_smtp.crypto")


def _derived_key(secret):
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), SALT, 100_000)
    return base64.urlsafe_b64encode(digest)


def _keys():
    configured = conf.get("ENCRYPTION_KEYS")
    if configured:
        return [key.encode() if isinstance(key, str) else key for key in configured]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derived_key(secret) for secret in secrets if secret]


def fernet():
    global _fernet
    if _fernet is None:
        try:
            _fernet = MultiFernet([Fernet(key) for key in _keys()])
        except (ValueError, TypeError) as error:
            raise ImproperlyConfigured(
                "ICARUS_SMTP_ENCRYPTION_KEYS must be a list of Fernet keys "
                "(Fernet.generate_key()); at least one is needed."
            ) from error
    return _fernet


@sensitive_variables("plaintext")
def encrypt(plaintext):
    """Return the ciphertext (text) of ``plaintext`` under the first key."""
    return fernet().encrypt(plaintext.encode()).decode()


@sensitive_variables("ciphertext")
def decrypt(ciphertext):
    """Return the plaintext, or raise ``PasswordUnreadable`` — never the ciphertext."""
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as error:
        raise PasswordUnreadable() from error


def rotate(ciphertext):
    """Re-encrypt ``ciphertext`` under the first key (raises ``PasswordUnreadable``)."""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as error:
        raise PasswordUnreadable() from error
