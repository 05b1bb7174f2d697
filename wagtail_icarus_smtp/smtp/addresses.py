"""The mailbox address on the wire, also with an international domain (IDN).

``info@müller-sprung.de`` goes out as it is where the server offers SMTPUTF8 (RFC 6531);
elsewhere its domain is written in IDNA 2008 form (``info@xn--mller-sprung-...``), which
every server understands; the AUTH login is always that ASCII form. IDNA 2008 with
UTS 46 mapping, not Python's ``"idna"`` codec (IDNA 2003), which turns ``ß`` into ``ss``
— another domain. An address that cannot work
on a server (a local part with non-ASCII letters and no SMTPUTF8) is refused with a
translated explanation before anything is sent for it.
"""

import idna
from django.utils.translation import gettext as _

from ..exceptions import IcarusSmtpError


class UnsendableAddress(IcarusSmtpError):
    """The mailbox address cannot be used as sender on this server."""

    category = "sender_rejected"


def ascii_form(address):
    """``address`` with its domain in IDNA 2008 form; raises ``idna.IDNAError``
    (a ``UnicodeError``) for a domain that is no valid international name."""
    local, _at, domain = address.rpartition("@")
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def ascii_if_possible(address):
    """``address`` in ASCII where that is possible: how the From header names the
    mailbox, and the AUTH login (Dovecot, behind most hosters' Postfix, refuses
    non-ASCII user names by default; ``auth_username_chars``)."""
    try:
        return address if address.isascii() else ascii_form(address)
    except UnicodeError:
        return address


def envelope(client, address):
    """``(sender, mail options)`` for ``MAIL FROM`` of ``address`` on ``client``'s
    session (after EHLO). Raises ``UnsendableAddress`` when it cannot work there."""
    if address.isascii():
        return address, []
    if client.has_extn("smtputf8"):
        return address, ["SMTPUTF8"]
    local = address.rpartition("@")[0]
    if local.isascii():
        try:
            return ascii_form(address), []
        except UnicodeError:
            pass
    text = _(
        "The mail server does not accept international characters in addresses "
        "(no SMTPUTF8), and the part before the @ of %(address)s has some. "
        "Use an address with only letters without accents, digits and punctuation "
        "before the @."
    ) % {"address": address}
    raise UnsendableAddress(text, reply=text)
