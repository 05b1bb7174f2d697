"""SMTP CHUNKING (RFC 3030) over PIPELINING: messages go out without waiting for replies.

Where the server offers both (Postfix ≥ 3.4, Exim ≥ 4.88, Microsoft 365 and Gmail do),
a message is ``MAIL FROM``, its ``RCPT TO`` lines and ``BDAT <size> LAST`` followed by
exactly ``size`` bytes of content: the server needs no ``354`` before it, so the next
messages follow in the same write. The content has every bare CR or LF turned into
CRLF (no SMTP smuggling) and is not dot-stuffed (the size, not a dot line, ends it).

Messages go out until a window is full — ``WINDOW_REPLIES`` replies owed or
``WINDOW_BYTES`` bytes of content not yet answered — then the replies are read in
order; each message answered makes room for the next. With ``PIPELINING`` alone
(``smtp/pipelining``) each message waits one round trip for its ``354``; here a
window of messages shares one. The window keeps what a broken connection leaves
unanswered small, and the replies owed fit in the socket buffers, so neither side
blocks writing while the other does too.

Each message after the first begins with ``RSET``: after a refused ``BDAT`` a server
may keep the transaction open, and the next message's ``MAIL`` was already sent; the
``RSET`` keeps a failure from spilling over. After a refused ``MAIL`` or when every
``RCPT`` was refused, the server refuses the ``BDAT`` but still reads its bytes
(RFC 3030): they cannot be taken for commands.

Outcomes are those of ``pipelining.send``: the refused recipients (a dict), or the
exception ``sendmail`` would have raised. A ``421`` ends the session (the client is
closed): the messages after the one that heard it get no outcome, and the server did
not take them. A broken connection or a timeout ends it too; then the one waiting for
its replies gets the error, and the rest of the window no outcome — the server may
have taken some of them, so a new attempt may deliver them twice (same Message-ID),
as it may any message whose reply was lost. The transcript, the reply budget and the
deadline of ``transport`` apply: every write and each message's replies get a fresh
deadline.
"""

import collections
import dataclasses
import smtplib

from ..exceptions import IcarusSmtpError
from .pipelining import SessionEnded, commands, envelope_replies, reset_reply
from .transport import normalise_line_ends

#: Replies owed at most before the next message waits for one (about 50 messages of one
#: recipient: four replies each with ``RSET``). Far below what socket buffers hold.
WINDOW_REPLIES = 200
#: Bytes of content not yet answered at most (at least one message goes out).
WINDOW_BYTES = 1024 * 1024


def offered(client):
    """Whether ``client``'s server offers CHUNKING and PIPELINING (after EHLO)."""
    return client.has_extn("chunking") and client.has_extn("pipelining")


def content(data):
    """The ``BDAT`` content of ``data``: bare CR or LF become CRLF, and it ends with
    CRLF, as the ``DATA`` content does (``pipelining.content``) — without dot-stuffing."""
    chunk = normalise_line_ends(data)
    return chunk if chunk.endswith(b"\r\n") else chunk + b"\r\n"


@dataclasses.dataclass
class _Sent:
    """A message whose commands and content went out; its replies are still owed."""

    transaction: object
    reset: bool  # it began with RSET
    replies: int
    size: int


def send(client, transactions, seconds=None):
    """Send ``transactions`` (an iterable, read as the window allows) over ``client``;
    yield ``(transaction, outcome)`` for each, in order (see the module docstring)."""
    upcoming = iter(transactions)
    owed = collections.deque()
    began = False  # a message went out before: the next begins with RSET
    unsendable = None  # (transaction, error): yielded once those before it are answered
    while True:
        write = bytearray()
        while unsendable is None and _room(owed):
            following = next(upcoming, None)
            if following is None:
                break
            try:
                write += _message(client, following, began, owed)
            except (ValueError, smtplib.SMTPNotSupportedError) as error:
                unsendable = (following, error)  # nothing of it was written
                break
            began = True
        try:
            if write:
                client.start_exchange(seconds)
                client.send(bytes(write))
            if not owed:
                if unsendable is None:
                    return
                yield unsendable
                unsendable = None
                continue
            client.start_exchange(seconds)
            outcome = _replies(client, owed[0])
        except SessionEnded as ended:
            client.close()
            yield owed[0].transaction, ended.args[0]
            return
        except (OSError, IcarusSmtpError) as error:  # broken, timeout, reply too long
            yield owed[0].transaction, error
            return
        yield owed.popleft().transaction, outcome


def _room(owed):
    """Whether another message may go out before a reply is read."""
    if not owed:
        return True
    replies = sum(sent.replies for sent in owed)
    return replies < WINDOW_REPLIES and sum(sent.size for sent in owed) < WINDOW_BYTES


def _message(client, transaction, reset, owed):
    """The bytes of ``transaction`` (``RSET`` first if ``reset``), recorded in ``owed``.
    Raises as ``pipelining.commands`` does, before anything is recorded."""
    chunk = content(transaction.data)
    encoded = commands(client, transaction, last=f"BDAT {len(chunk)} LAST")
    replies = len(transaction.recipients) + 2 + reset
    owed.append(_Sent(transaction, reset, replies, len(chunk)))
    return (b"RSET\r\n" if reset else b"") + encoded + chunk


def _replies(client, sent):
    """Read the replies of one message: the refused recipients (a dict) when it was
    taken, else the exception ``sendmail`` would raise. Raises ``SessionEnded``."""
    transaction = sent.transaction
    if sent.reset:
        reset_reply(client, transaction)
    sender_refused, refused = envelope_replies(client, transaction)
    code, reply = client.getreply()
    if sender_refused is not None:
        failure = sender_refused
    elif len(refused) == len(transaction.recipients):
        failure = smtplib.SMTPRecipientsRefused(refused)
    elif code != 250:
        failure = smtplib.SMTPDataError(code, reply)
    else:
        return refused
    if code == 421:
        raise SessionEnded(failure)
    return failure
