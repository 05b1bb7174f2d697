"""The SMTP login: one AUTH attempt per connection, user name and password in UTF-8.

smtplib's ``login()`` encodes AUTH as ASCII (a password with ``ä`` or ``ß`` never left
the machine) and, when the server refuses, tries the next mechanism: one wrong password
became two failed logins, which doubles the provider's lockout counter and made
Dovecot's growing delay look like a timeout. Here the best mechanism the server offers
is used once (PLAIN, else LOGIN), with UTF-8 as RFC 4616 says; the first refusal is
final and never retried automatically.
"""

import base64
import smtplib

from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from ..exceptions import IcarusSmtpError

#: The mechanisms we use, best first: PLAIN needs one round trip, LOGIN three.
MECHANISMS = ("PLAIN", "LOGIN")
#: Replies that end a login successfully (503: already authenticated, as in smtplib).
SUCCESS = (235, 503)


class MalformedAuthReply(IcarusSmtpError):
    """The server answered AUTH with something we cannot continue from (e.g. another
    challenge after the password)."""


def choose(advertised):
    """The best mechanism of ``MECHANISMS`` in the EHLO ``AUTH`` keyword's value."""
    names = advertised.upper().split()
    for mechanism in MECHANISMS:
        if mechanism in names:
            return mechanism
    raise smtplib.SMTPException("No suitable authentication method found.")


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@sensitive_variables()
def login(client, user, password):
    """Authenticate ``client`` (an ``smtplib.SMTP``) once; return ``(code, reply)``.

    Raises ``SMTPAuthenticationError`` with the server's refusal,
    ``SMTPNotSupportedError`` when the server offers no AUTH, ``SMTPException`` when it
    offers no mechanism we use, ``MalformedAuthReply`` when it asks for more than the
    mechanism has to say (the exchange is cancelled with ``*`` first, RFC 4954).
    """
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    mechanism = choose(client.esmtp_features["auth"])
    if mechanism == "PLAIN":  # RFC 4616: [authzid] NUL authcid NUL passwd, UTF-8
        code, reply = client.docmd("AUTH", "PLAIN " + _b64(f"\0{user}\0{password}"))
    else:
        code, reply = client.docmd("AUTH", "LOGIN")
        for answer in (user, password):
            if code != 334:
                break
            code, reply = client.docmd(_b64(answer))
    if code in SUCCESS:
        return code, reply
    if code == 334:  # a challenge where none belongs
        client.docmd("*")
        text = _("The server's answer to the login (AUTH) could not be read (%(error)s).") % {
            "error": f"{code} challenge"
        }
        raise MalformedAuthReply(text, reply=text)
    raise smtplib.SMTPAuthenticationError(code, reply)
