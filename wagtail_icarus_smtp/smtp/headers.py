"""Sender safety: what may go into the From header (display name and mailbox), and
the From/Reply-To rewrite of a stored message.

Used by the form (a field error) and again by the backend (nothing is written to the
socket), so a value that slipped into the database another way is still refused.
"""

import functools
import unicodedata
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from . import addresses

MAX_NAME = 100
MAX_ADDRESS = 254
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Characters that make a display name look like an address ("Name <other@example>")
#: or need escaping. Commas, quotes, semicolons and "@" are allowed: the From header is
#: built from a (name, address) pair (``email.headerregistry.Address``), which quotes them.
NAME_SPECIALS = frozenset("<>\\")
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
            _("The name must not contain any of these characters: < > \\"),
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


def with_mailbox_sender(mime, mailbox, from_name, sender, has_reply_to):
    """``mime`` with From set to the mailbox; a foreign original sender becomes Reply-To.

    Only the header block is touched: the body bytes go out exactly as Django built them,
    copied once (a message may be megabytes).
    """
    end = mime.find(b"\r\n\r\n")
    head = mime if end < 0 else mime[:end]
    kept, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == b"from"
        if not skipping:
            kept.append(line)
    new_headers = _sender_headers(mailbox, from_name, sender, has_reply_to)
    new_head = b"\r\n".join([*new_headers, *kept])
    return new_head if end < 0 else b"".join((new_head, memoryview(mime)[end:]))


@functools.lru_cache(maxsize=256)
def _sender_headers(mailbox, from_name, sender, has_reply_to):
    """The From (and Reply-To) header lines, folded and encoded: the same for every
    message of a batch, so built once (the email package is slow at it)."""
    added = EmailMessage(policy=SMTP_POLICY)
    added["From"] = Address(display_name=from_name, addr_spec=addresses.ascii_if_possible(mailbox))
    foreign = sender and parseaddr(sender)[1].lower() != mailbox.lower()
    if foreign and not has_reply_to:
        added["Reply-To"] = sender
    return tuple(added.as_bytes().rstrip(b"\r\n").split(b"\r\n"))
