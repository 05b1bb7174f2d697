"""Turn what went wrong in an SMTP exchange into exactly one failure category.

Replies are matched on the reply code and the enhanced status code first, on the text
second (SPEC §4, providers.md); the server's own reply is kept, with secrets masked.
"""

import base64
import dataclasses
import re
import smtplib
import socket
import ssl

from django.views.decorators.debug import sensitive_variables

from ..exceptions import IcarusSmtpError
from ..status import Category
from . import deadline

MAX_REPLY = 500
#: What one SMTP exchange may raise besides a bug: network and TLS errors, smtplib's
#: errors and our own (deadline, host guard, malformed replies).
EXCHANGE_ERRORS = (OSError, IcarusSmtpError, smtplib.SMTPException)
ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
#: A run of base64 characters (standard or URL-safe alphabet, optional padding).
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{4,}={0,2}")
URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")

#: (reply code or None, enhanced code or None, text pattern or None) -> category.
#: The first matching rule wins; ``None`` matches anything.
REPLY_RULES = [
    # A provider's temporary send limit (IONOS "450 Mail send limit exceeded", Gmail
    # "421 4.7.0 Try again later", Microsoft "554 5.2.0 …SubmissionQuotaExceeded…"):
    # before the rules below, whose enhanced codes a rate-limit reply may share.
    (450, None, r"limit exceeded", Category.RATE_LIMITED),
    (451, "4.7.0", r"rate", Category.RATE_LIMITED),
    (451, None, r"rate limit", Category.RATE_LIMITED),
    (421, "4.7.0", r"try again later", Category.RATE_LIMITED),
    (None, None, r"SubmissionQuotaExceeded", Category.RATE_LIMITED),
    # Postfix's anvil (smtpd_client_message_rate_limit and friends), as hosters run it.
    (
        None,
        None,
        r"error: too (much mail|many recipients|many messages) from",
        Category.RATE_LIMITED,
    ),
    (534, "5.7.9", None, Category.APP_PASSWORD_REQUIRED),
    (None, None, r"application-specific password", Category.APP_PASSWORD_REQUIRED),
    (None, "5.7.139", None, Category.AUTH_DISABLED),
    (None, "5.7.30", None, Category.AUTH_DISABLED),
    (None, None, r"basic authentication is (disabled|not supported)", Category.AUTH_DISABLED),
    (None, None, r"SmtpClientAuthentication is disabled", Category.AUTH_DISABLED),
    (504, "5.7.4", None, Category.AUTH_DISABLED),
    (530, "5.7.0", r"STARTTLS", Category.TLS_UNAVAILABLE),
    (451, "5.7.3", r"STARTTLS", Category.TLS_UNAVAILABLE),
    (None, None, r"sender address is not allowed", Category.SENDER_REJECTED),
    (None, None, r"forbidden domain .* in envelope-from", Category.SENDER_REJECTED),
]


@dataclasses.dataclass(frozen=True)
class Failure:
    category: str
    reply: str = ""  # the server's reply or the error text, safe to show


def _match_reply(code, reply):
    enhanced = ENHANCED.search(reply)
    enhanced = enhanced.group(1) if enhanced else None
    for rule_code, rule_enhanced, pattern, category in REPLY_RULES:
        if rule_code is not None and rule_code != code:
            continue
        if rule_enhanced is not None and rule_enhanced != enhanced:
            continue
        if pattern is not None and not re.search(pattern, reply, re.IGNORECASE):
            continue
        return category
    return None


def _decode(reply):
    """A reply as one line of readable text (see ``_join_lines``)."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", errors="replace")
    return _join_lines(str(reply).splitlines())


#: The enhanced status code at the start of a reply line (RFC 3463).
ENHANCED_START = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s+")
SENTENCE_END = ".!?:;,"


def _join_lines(lines):
    """The lines of a multi-line reply (smtplib gives them without their reply code)
    as one text with the enhanced status code once: Exim and Gmail repeat it on every
    line. A line that starts a new statement (a capital after a line without final
    punctuation, as Exim writes them) is set off with "; "; a sentence that continues
    on the next line (Gmail's "Learn more at" + link) is joined with a space."""
    lines = [" ".join(line.split()) for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    code = ENHANCED_START.match(lines[0])
    text = lines[0]
    for line in lines[1:]:
        if code is not None and line.startswith(code.group(0)):
            line = line[len(code.group(0)) :]
        new_statement = text[-1] not in SENTENCE_END and line[:1].isupper()
        text += ("; " if new_statement else " ") + line
    return text


def _reply_failure(error):
    """Category for an exception that carries an SMTP reply, or ``None``."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        text = f"{code} {_decode(reply)}"
        return _match_reply(code, text) or Category.SENDER_REJECTED, text
    if not isinstance(error, smtplib.SMTPResponseException):
        return None
    text = f"{error.smtp_code} {_decode(error.smtp_error)}"
    category = _match_reply(error.smtp_code, text)
    if category is None:
        if isinstance(error, smtplib.SMTPAuthenticationError):
            category = Category.AUTH
        elif isinstance(error, smtplib.SMTPSenderRefused):
            category = Category.SENDER_REJECTED
        else:
            category = Category.PROTOCOL
    return category, text


def _error_category(error):
    if deadline.is_deadline_error(error):
        return Category.TIMEOUT
    if isinstance(error, ssl.SSLCertVerificationError):
        return Category.CERTIFICATE
    if isinstance(error, ssl.CertificateError):
        return Category.CERTIFICATE
    if isinstance(error, ssl.SSLError):
        return Category.TLS_HANDSHAKE
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Category.PROTOCOL
    if isinstance(error, (socket.gaierror, ConnectionError, smtplib.SMTPServerDisconnected)):
        return Category.CONNECTION
    if isinstance(error, OSError):
        return Category.CONNECTION
    return Category.PROTOCOL


def _base64_decodings(token):
    """What ``token`` stands for as base64, standard or URL-safe, padded or not, read
    from each of the four places a base64 group can start (a server may glue
    something in front of it)."""
    letters = token.rstrip("=").translate(URL_SAFE_TO_STANDARD)
    for start in range(4):
        group = letters[start:]
        group = group[: len(group) - (len(group) % 4 == 1)]  # a lone last letter: no byte
        yield base64.b64decode(group + "=" * (-len(group) % 4))  # padded: cannot fail


@sensitive_variables()
def mask(text, secrets):
    """Replace every secret in ``text`` by ``****``: in plain, and every base64 token
    (standard or URL-safe, with or without padding) whose decoded bytes contain it,
    e.g. the AUTH PLAIN blob ``base64("\\0user\\0password")`` echoed by a server."""
    for secret in secrets:
        if not secret:
            continue
        raw = secret.encode()
        text = text.replace(secret, "****")
        text = BASE64_TOKEN.sub(
            lambda match, raw=raw: (
                "****" if any(raw in data for data in _base64_decodings(match[0])) else match[0]
            ),
            text,
        )
    return text[:MAX_REPLY]


@sensitive_variables()
def classify(error, *, secrets=()):
    """Return the ``Failure`` for an exception raised by ``transport`` or ``crypto``."""
    if isinstance(error, IcarusSmtpError):
        return Failure(error.category, mask(_decode(error.reply), secrets))
    from_reply = _reply_failure(error)
    if from_reply is not None:
        category, text = from_reply
        return Failure(category, mask(text, secrets))
    text = f"{type(error).__name__}: {_decode(error)}"
    return Failure(_error_category(error), mask(text, secrets))
