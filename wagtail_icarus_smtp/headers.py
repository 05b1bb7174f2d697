"""Sender safety: what may go into the From header (display name and mailbox).

Used by the form (a field error) and again by the backend (nothing is written to the
socket), so a value that slipped into the database another way is still refused.
"""

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from . import addresses

MAX_NAME = 100
MAX_ADDRESS = 254
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Characters with a meaning in address headers; never needed in a display name.
NAME_SPECIALS = frozenset('<>@,;"\\')
ADDRESS_SPECIALS = frozenset('<>,;"\\ ()[]:')


def _has_control(value):
    """CR, LF, NUL, any other control/format char, line/paragraph separators, bidi."""
    return any(
        char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        for char in value
    )


def check_display_name(value):
    """Raise ``ValidationError`` unless ``value`` is a safe display name."""
    if len(value) > MAX_NAME:
        raise ValidationError(
            _("The name may have at most %(max)d characters."),
            code="too_long",
            params={"max": MAX_NAME},
        )
    if _has_control(value) or "=?" in value:
        raise ValidationError(
            _("The name must not contain line breaks, control characters or “=?”."),
            code="unsafe",
        )
    if NAME_SPECIALS & set(value):
        raise ValidationError(
            _("The name must not contain any of these characters: < > @ , ; \" \\"),
            code="special",
        )


def check_address(value):
    """Raise ``ValidationError`` unless ``value`` is one plain mailbox address."""
    if len(value) > MAX_ADDRESS or _has_control(value) or ADDRESS_SPECIALS & set(value):
        raise ValidationError(_("Enter a single plain e-mail address."), code="unsafe")
    if "=?" in value or value.count("@") != 1:
        raise ValidationError(_("Enter a single plain e-mail address."), code="unsafe")
    validate_email(value)
    try:
        addresses.ascii_form(value)
    except UnicodeError:
        raise ValidationError(
            _(
                "The domain after the @ is not a valid international domain name "
                "(IDNA 2008); mail servers cannot deliver to it. Check the spelling."
            ),
            code="idna",
        ) from None


def is_safe_sender(name, address):
    """True when both parts pass; for the backend's second check."""
    try:
        check_display_name(name)
        check_address(address)
    except ValidationError:
        return False
    return True
