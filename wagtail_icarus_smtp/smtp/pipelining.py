"""SMTP PIPELINING (RFC 2920): a group of messages in about one round trip each.

Where the server offers ``PIPELINING`` (Postfix, Exim, Microsoft 365 and Gmail do),
``MAIL FROM``, every ``RCPT TO`` and ``DATA`` of a message go out in one write and
their replies are read together; once the server said ``354``, the message content
goes out — and the next message's commands follow its end of data in the same write.
Lock-step ``sendmail`` costs 3 + recipients round trips per message instead. Where the
server also offers ``CHUNKING``, ``smtp/chunking`` does without the wait for ``354``
(and uses this module's commands and envelope replies).

Each message's outcome is what smtplib's ``sendmail`` gives for it: the refused
recipients (a dict, empty when all took it), or the exception it would have raised
(``SMTPSenderRefused``, ``SMTPRecipientsRefused``, ``SMTPDataError``, an ``OSError``
when the connection broke). A ``421`` ends the session: the client is closed and no
more outcomes follow. The transcript, the reply budget and the deadline of
``transport`` apply, as the writes and reads go through the client.
"""

import dataclasses
import smtplib

from ..exceptions import IcarusSmtpError
from .transport import normalise_line_ends


@dataclasses.dataclass
class Transaction:
    """One message for ``send``; ``tag`` is the caller's (e.g. its outbox row)."""

    sender: str
    recipients: list
    data: bytes
    options: list = dataclasses.field(default_factory=list)
    tag: object = None


def offered(client):
    """Whether ``client``'s server offers PIPELINING (after EHLO)."""
    return client.has_extn("pipelining")


def content(data):
    """The DATA content of ``data`` as it goes on the wire: bare CR or LF become CRLF
    (no SMTP smuggling), lines starting with a dot get another one, and the final
    ``.`` line ends it — what smtplib's ``data()`` sends."""
    quoted = smtplib._quote_periods(normalise_line_ends(data))
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"


def commands(client, transaction, last="DATA"):
    """``MAIL FROM``, the ``RCPT TO`` lines and ``last`` (``DATA``, or ``smtp/chunking``'s
    ``BDAT``) of ``transaction``, encoded.

    Raises what smtplib raises before it sends such commands: ``ValueError`` for an
    address it cannot encode or a line break in one, ``SMTPNotSupportedError`` for
    ``SMTPUTF8`` on a server without it.
    """
    options = list(transaction.options)
    if client.has_extn("size"):
        options.insert(0, f"size={len(transaction.data)}")
    encoding = client.command_encoding
    if any(option.lower() == "smtputf8" for option in options):
        if not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        encoding = "utf-8"
    suffix = "".join(f" {option}" for option in options)
    lines = [f"MAIL FROM:{smtplib.quoteaddr(transaction.sender)}{suffix}"]
    lines += [f"RCPT TO:{smtplib.quoteaddr(address)}" for address in transaction.recipients]
    lines.append(last)
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("command and arguments contain prohibited newline characters")
    return "".join(f"{line}\r\n" for line in lines).encode(encoding)


class SessionEnded(Exception):
    """A 421 was read: the server has ended the session."""


def send(client, transactions, seconds=None):
    """Send ``transactions`` (an iterable, read one ahead) pipelined over ``client``;
    yield ``(transaction, outcome)`` for each, in order (see the module docstring).

    Stops after a ``421`` or a broken connection: the transaction whose commands went
    out last may then have no outcome (it was not sent). Every write starts a fresh
    deadline of ``seconds`` (``client.start_exchange``), as one message does lock-step.
    """
    upcoming = iter(transactions)
    pending = None  # its DATA was answered 354: the content goes with the next write
    reset = False  # the last transaction ended before its content: RSET first
    while True:
        client.start_exchange(seconds)
        following = next(upcoming, None)
        try:
            # Encoded before anything is written: one that cannot be goes out alone.
            encoded = None if following is None else commands(client, following)
        except (ValueError, smtplib.SMTPNotSupportedError) as error:
            encoded = error
        write = b"" if pending is None else content(pending[0].data)
        if isinstance(encoded, bytes):
            write += (b"RSET\r\n" if reset else b"") + encoded
        current = following if pending is None else pending[0]
        try:
            if write:
                client.send(write)
            if pending is not None:
                yield pending[0], _end_of_data(client, *pending)
                pending = None
            if following is None:
                return
            current = following
            if not isinstance(encoded, bytes):  # nothing was sent for it
                yield following, encoded
                continue
            if reset:
                reset_reply(client, following)
                reset = False
            outcome = _replies(client, following)
        except SessionEnded as ended:
            client.close()
            yield current, ended.args[0]
            return
        except (OSError, IcarusSmtpError) as error:  # broken, timeout, reply too long
            yield current, error
            return
        if isinstance(outcome, dict):
            pending = (following, outcome)
        else:
            reset = True
            yield following, outcome


def reset_reply(client, transaction):
    """Read the reply to the ``RSET`` sent before ``transaction``'s commands."""
    code, reply = client.getreply()
    if code == 421:  # the session ended before this transaction began
        raise SessionEnded(smtplib.SMTPSenderRefused(code, reply, transaction.sender))


def envelope_replies(client, transaction):
    """Read the replies to MAIL and each RCPT: ``(sender_refused, refused)``, the
    ``SMTPSenderRefused`` (or ``None``) and the refused recipients (a dict). Raises
    ``SessionEnded`` at a ``421``."""
    code, reply = client.getreply()
    sender_refused = None
    if code != 250:
        sender_refused = smtplib.SMTPSenderRefused(code, reply, transaction.sender)
        if code == 421:
            raise SessionEnded(sender_refused)
    refused = {}
    for address in transaction.recipients:
        code, reply = client.getreply()
        if code not in (250, 251):
            refused[address] = (code, reply)
        if code == 421:
            raise SessionEnded(sender_refused or smtplib.SMTPRecipientsRefused(refused))
    return sender_refused, refused


def _replies(client, transaction):
    """Read the replies to MAIL, RCPT and DATA: the refused recipients (a dict) when
    the content may follow (354), else the exception ``sendmail`` would raise."""
    sender_refused, refused = envelope_replies(client, transaction)
    code, reply = client.getreply()
    if sender_refused is None and len(refused) == len(transaction.recipients):
        failure = smtplib.SMTPRecipientsRefused(refused)
    else:
        failure = sender_refused or smtplib.SMTPDataError(code, reply)
    if code == 421:
        raise SessionEnded(failure)
    if code != 354:
        return failure
    if sender_refused is not None or len(refused) == len(transaction.recipients):
        # A server that says 354 without a transaction to fill: end it empty (RFC 2920).
        client.send(b".\r\n")
        code, reply = client.getreply()
        if code == 421:
            raise SessionEnded(failure)
        return failure
    return refused


def _end_of_data(client, transaction, refused):
    """The reply to the end of the content: the refused recipients, or the error."""
    code, reply = client.getreply()
    if code == 250:
        return refused
    error = smtplib.SMTPDataError(code, reply)
    if code == 421:
        raise SessionEnded(error)
    return error
