"""``AUTH XOAUTH2``: log in to an SMTP server with an OAuth 2.0 access token.

One attempt: ``AUTH XOAUTH2 base64("user=" mailbox "\\x01auth=Bearer " token "\\x01\\x01")``.
A refusal is ``334 <base64 JSON error>``; we answer with an empty line and the server
ends with ``535``. The JSON (status, schemes, scope) is kept in the reply we raise —
it helps, and it holds no secret. Nothing raised here carries the token: errors are
raised afresh, their text masked.
"""

import base64
import binascii
import smtplib

from django.views.decorators.debug import sensitive_variables

from ..exceptions import IcarusSmtpError
from . import failures
from .deadline import DeadlineExceeded, is_deadline_error


@sensitive_variables()
def initial_response(user, token):
    """The base64 text sent after ``AUTH XOAUTH2``."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    return base64.b64encode(raw).decode("ascii")


@sensitive_variables()
def authenticate(client, user, token):
    """Log ``client`` (an ``smtplib.SMTP`` after EHLO over TLS) in as ``user``.

    Raises ``SMTPAuthenticationError`` (the server's reply, masked) on refusal.
    """
    client._masking = True  # the transcript shows "C: ****" for what we send
    try:
        fresh = None
        code, reply = client.docmd("AUTH", "XOAUTH2 " + initial_response(user, token))
        if code == 334:
            details = _decoded(reply)
            code, reply = client.docmd("")
            if details:
                reply = reply + b" " + details
    except Exception as error:  # every kind: raised afresh below, without its frames
        fresh = _fresh(error, [token])
    finally:
        client._masking = False
    if fresh is not None:
        raise fresh from None
    if code not in (235, 503):
        text = failures.mask(failures._decode(reply), [token]).encode()
        raise smtplib.SMTPAuthenticationError(code, text)
    return code, reply


def _decoded(reply):
    """The server's JSON error (base64 after ``334``), or ``b""``."""
    try:
        return base64.b64decode(reply.strip(), validate=True)[:300]
    except (binascii.Error, ValueError):
        return b""


@sensitive_variables()
def _fresh(error, secrets):
    if is_deadline_error(error):
        return DeadlineExceeded("the SMTP deadline has passed")
    if isinstance(error, IcarusSmtpError):
        return type(error)(str(error), category=error.category, reply=error.reply)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return smtplib.SMTPServerDisconnected(failures.mask(str(error), secrets))
    if isinstance(error, OSError):
        return smtplib.SMTPServerDisconnected(f"{type(error).__name__} during AUTH")
    return smtplib.SMTPException(failures.mask(f"{type(error).__name__}: {error}", secrets))
