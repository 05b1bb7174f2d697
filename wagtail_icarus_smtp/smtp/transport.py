"""The SMTP conversation: TLS always verified, one total deadline, masked debug output.

``connect()`` opens an authenticated connection (STARTTLS or implicit TLS, chosen by the
port through ``ICARUS_SMTP_PORTS``); ``probe()`` uses it to test a mailbox without sending
a message. The connection test task and the email backend both go through here.

A server cannot make us read without end: every reply has a budget of lines and bytes
(``ReplyTooLong``, category ``protocol``), and a transcript keeps only its beginning.
Nothing smtplib raises while it holds the credentials leaves ``login()``: a fresh
exception without smtplib's frames (their locals hold the password) takes its place.
"""

import dataclasses
import os
import re
import smtplib
import ssl
import threading
import time

from django.core.mail.utils import DNS_NAME
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from .. import conf
from ..exceptions import IcarusSmtpError
from . import addresses, failures, hostguard, oauth, smtpauth, xoauth2
from .addresses import ascii_if_possible
from .deadline import Deadline, DeadlineExceeded, is_deadline_error
from .smtpauth import MalformedAuthReply

BARE_EOL = re.compile(rb"\r\n|\r|\n")

_tls_context = None
_tls_context_key = None
_tls_context_lock = threading.Lock()
#: (host, port, user) -> (context, the last TLS session it made), for resumption on the
#: next connection. A session only resumes with the context that made it, and another
#: thread may have replaced the context in between (a changed CA file, ``reset()``).
_sessions = {}
MAX_SESSIONS = 32
#: Budget of one server reply. Real servers stay far below it (EHLO: about 15 short
#: lines); a server that sends more is broken or hostile, and we stop reading.
MAX_REPLY_LINES = 100
MAX_REPLY_BYTES = 16 * 1024
#: How many characters of the conversation a transcript keeps (the test e-mail shows it).
MAX_TRANSCRIPT = 64 * 1024
#: The transcript line that stands for everything after ``MAX_TRANSCRIPT``.
TRANSCRIPT_CUT = "cut: transcript shortened"
#: The transcript line that stands for what the client sent during AUTH.
CREDENTIALS_MASKED = "C: ****"


class TlsUnavailable(IcarusSmtpError, smtplib.SMTPException):
    """The server offers no STARTTLS on a STARTTLS port; no credentials were sent."""

    category = "tls_unavailable"


class ReplyTooLong(IcarusSmtpError):
    """A reply went past ``MAX_REPLY_LINES`` or ``MAX_REPLY_BYTES``; the connection is
    closed. Not an ``OSError``, so smtplib passes it on instead of hiding it."""


class UnsendableCredentials(IcarusSmtpError):
    """User name or password have characters smtplib cannot send (it sends AUTH as
    ASCII); nothing was sent for them."""

    category = "auth"


def reset(**kwargs):
    """Forget the cached TLS context and sessions (called when settings change)."""
    global _tls_context, _tls_context_key
    _tls_context = _tls_context_key = None
    _sessions.clear()


conf.reloaded.connect(reset, dispatch_uid="wagtail_icarus_smtp.transport")


def _ca_file_key():
    ca_file = conf.get("CA_FILE")
    if not ca_file:
        return None
    try:
        return (str(ca_file), os.stat(ca_file).st_mtime_ns)
    except OSError:
        return (str(ca_file), None)


def tls_context():
    """One verifying client context per process: system trust store plus ``CA_FILE``.

    Building a context loads the system trust store (~30 ms); doing it once per
    process instead of once per connection is most of our speed-up over Django's
    stock backend. A replaced ``CA_FILE`` (new modification time) is loaded again.
    """
    global _tls_context, _tls_context_key
    key = _ca_file_key()
    with _tls_context_lock:  # threads that start together build it once
        if _tls_context is None or key != _tls_context_key:
            context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if key is not None:
                context.load_verify_locations(cafile=key[0])
            _tls_context, _tls_context_key = context, key
            _sessions.clear()  # sessions belong to the context that made them
        return _tls_context


def tls_mode(port):
    """``"starttls"`` or ``"ssl"`` for an allowed port, else ``None``."""
    return conf.get("PORTS").get(port)


@dataclasses.dataclass(frozen=True)
class Mailbox:
    """Connection data of one mailbox; the password only ever lives in memory."""

    host: str
    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    #: An ``oauth`` token source (``MicrosoftApp``, ``GoogleServiceAccount``): log in
    #: with ``AUTH XOAUTH2`` and a token from it instead of the password.
    oauth: object = dataclasses.field(default=None, repr=False)


def normalise_line_ends(data):
    """``data`` with every bare CR or LF turned into CRLF: a server cannot be made to
    see an end of data that we did not mean (SMTP smuggling). ``data`` itself when it
    has none (no copy of a large message: as many CRLF as CR and as LF means no bare one).
    """
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf and data.count(b"\n") == crlf:
        return data
    return BARE_EOL.sub(b"\r\n", data)


class _DeadlineReader:
    """Replaces smtplib's ``sock.makefile()``: every read is bounded by the deadline,
    so a server that drips one byte at a time cannot stretch a reply past it."""

    def __init__(self, sock, client):
        self.sock = sock
        self.client = client
        self.buffer = b""

    def readline(self, limit=-1):
        while b"\n" not in self.buffer and (limit < 0 or len(self.buffer) < limit):
            self.sock.settimeout(self.client.deadline.remaining())
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        if limit >= 0:
            end = min(end, limit)
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        self.client.spend_reply_budget(line)
        self.client.record("S: ", line)
        return line

    def close(self):
        self.buffer = b""


class _DeadlineMixin:
    """Bounds every read and write by ``self.deadline`` and masks AUTH in debug output."""

    def __init__(self, host, port, *, deadline, addresses, transcript=None, **kwargs):
        self.deadline = deadline
        self.addresses = addresses
        self.transcript = transcript
        self._transcript_size = 0
        self._masking = False
        self._reply_lines = self._reply_bytes = 0
        super().__init__(host, port, timeout=deadline.remaining(), **kwargs)

    def start_exchange(self, seconds=None):
        """Give the next exchange (e.g. one message) a fresh total deadline."""
        self.deadline = Deadline(seconds or conf.get("TIMEOUT"))

    def _get_socket(self, host, port, timeout):
        """Dial only the vetted addresses; TLS still checks the name (``self._host``)."""
        error = OSError(f"no address to connect to for {host}")
        for address in self.addresses:
            try:
                return super()._get_socket(address, port, self.deadline.remaining())
            except DeadlineExceeded:
                raise
            except OSError as failed:
                error = failed
        raise error

    def data(self, msg):
        """Bare CR or LF become CRLF before smtplib dot-stuffs (no SMTP smuggling)."""
        if isinstance(msg, bytes):
            msg = normalise_line_ends(msg)
        return super().data(msg)

    def getreply(self):
        if self.file is None and self.sock is not None:
            self.file = _DeadlineReader(self.sock, self)
        self._reply_lines = self._reply_bytes = 0
        try:
            return super().getreply()
        except ReplyTooLong:
            self.close()  # the rest of the reply is still on its way
            raise

    def spend_reply_budget(self, line):
        """Count one line of the current reply; stop reading a reply past its budget."""
        self._reply_lines += 1
        self._reply_bytes += len(line)
        if self._reply_lines > MAX_REPLY_LINES or self._reply_bytes > MAX_REPLY_BYTES:
            text = _(
                "The server's reply was too long (more than %(lines)d lines or %(kb)d KB); "
                "reading stopped."
            ) % {"lines": MAX_REPLY_LINES, "kb": MAX_REPLY_BYTES // 1024}
            raise ReplyTooLong(text, reply=text)

    def send(self, s):
        if self.sock is not None:
            self.sock.settimeout(self.deadline.remaining())
            self.record("C: ", s)
        return super().send(s)

    def record(self, prefix, data):
        """Add what passed the socket to the transcript, line by line (``prefix``
        ``C: `` for the client, ``S: `` for the server); AUTH only as ``****``.
        Lines and their line breaks count; room is kept for the "shortened" line."""
        budget = MAX_TRANSCRIPT - 100
        if self.transcript is None or self._transcript_size >= budget:
            return
        if self._masking and prefix == "C: ":
            lines = [CREDENTIALS_MASKED]
        else:
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
            lines = [prefix + line for line in text.splitlines()]
        for line in lines:
            room = budget - self._transcript_size
            self.transcript.append(line[:room])
            self._transcript_size += len(line) + 1
            if self._transcript_size >= budget:
                self.transcript.append(TRANSCRIPT_CUT)
                return

    def starttls(self, **kwargs):
        self.sock.settimeout(self.deadline.remaining())
        return super().starttls(**kwargs)

    @sensitive_variables()
    def login(self, user, password, **kwargs):
        """One AUTH attempt in UTF-8 (``smtpauth.login``, not smtplib's, which sends
        ASCII and tries the next mechanism after a refusal); what goes wrong is raised
        afresh (see ``_auth_error``)."""
        self._masking = True
        try:
            return smtpauth.login(self, user, password)
        except Exception as error:  # every kind: re-raised afresh below
            fresh = _auth_error(error, [password])
        finally:
            self._masking = False
            self.password = ""  # smtplib keeps it on the client; it is not needed again
        # Raised outside the except block: no link to the original exception, whose
        # traceback holds smtplib's frames with the credentials in their locals.
        raise fresh from None

    def _print_debug(self, *args):
        if self._masking and args and str(args[0]).startswith("send:"):
            args = ("send:", "'****' (credentials masked)")
        super()._print_debug(*args)


@sensitive_variables()
def _auth_error(error, secrets):
    """A fresh exception for ``error`` from smtplib's ``login``, its text masked.

    A challenge smtplib cannot decode (``334 abc``) or credentials it cannot encode
    become our own errors (categories ``protocol`` and ``auth``) instead of escaping
    as ``binascii.Error`` or ``UnicodeEncodeError``.
    """
    if is_deadline_error(error):
        return DeadlineExceeded("the SMTP deadline has passed")
    if isinstance(error, IcarusSmtpError):
        return type(error)(str(error), category=error.category, reply=error.reply)
    if isinstance(error, smtplib.SMTPResponseException):
        reply = failures.mask(failures._decode(error.smtp_error), secrets).encode()
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return smtplib.SMTPAuthenticationError(error.smtp_code, reply)
        return smtplib.SMTPResponseException(error.smtp_code, reply)
    if type(error) in (
        smtplib.SMTPException,
        smtplib.SMTPNotSupportedError,
        smtplib.SMTPServerDisconnected,
    ):
        return type(error)(failures.mask(str(error), secrets))
    if isinstance(error, OSError):
        return smtplib.SMTPServerDisconnected(f"{type(error).__name__} during AUTH")
    if isinstance(error, UnicodeEncodeError):
        text = _(
            "The e-mail address or the password contains characters (such as ä or ß) "
            "that cannot be sent to the mail server yet."
        )
        return UnsendableCredentials(text, reply=text)
    text = _("The server's answer to the login (AUTH) could not be read (%(error)s).") % {
        "error": type(error).__name__
    }
    return MalformedAuthReply(text, reply=text)


class SMTP(_DeadlineMixin, smtplib.SMTP):
    pass


class SMTP_SSL(_DeadlineMixin, smtplib.SMTP_SSL):
    pass


# Every local may hold the password, or (the transcript) a reply that echoes it.
@sensitive_variables()
def connect(mailbox, deadline, *, debuglevel=0, transcript=None):
    """Open a TLS connection to ``mailbox`` and log in. The caller closes it.

    Raises ``TlsUnavailable`` before any credential is sent when a STARTTLS port does
    not offer STARTTLS; certificate and host name are always verified. With a list as
    ``transcript``, the SMTP conversation is appended to it (credentials masked).
    """
    token = oauth.token(mailbox.oauth, tls_context(), deadline) if mailbox.oauth else None
    addresses = hostguard.resolve(mailbox.host, mailbox.port)
    options = {"deadline": deadline, "addresses": addresses, "transcript": transcript}
    options["local_hostname"] = DNS_NAME.get_fqdn()
    key = (mailbox.host, mailbox.port, mailbox.username)
    shared = tls_context()
    made_by, session = _sessions.get(key, (None, None))
    context = _ResumingContext(shared, session if made_by is shared else None)
    if tls_mode(mailbox.port) == "ssl":
        client = SMTP_SSL(mailbox.host, mailbox.port, context=context, **options)
    else:
        client = SMTP(mailbox.host, mailbox.port, **options)
    try:
        client.set_debuglevel(debuglevel)
        if tls_mode(mailbox.port) != "ssl":
            client.ehlo()
            if not client.has_extn("starttls"):
                raise TlsUnavailable(reply=client.ehlo_resp.decode(errors="replace"))
            client.starttls(context=context)
            client.ehlo()
        if token is not None:
            xoauth2.authenticate(client, mailbox.username, token)
        else:
            client.login(ascii_if_possible(mailbox.username), mailbox.password)
    except BaseException as error:
        _sessions.pop(key, None)
        _hang_up(client, error)
        raise
    _remember_session(key, shared, client.sock)
    return client


class _ResumingContext:
    """Wraps the shared context to offer the last TLS session for this server.

    Resuming skips most of a full handshake on both sides; the session was made by a
    handshake that verified this host's certificate, with the same trust settings.
    """

    def __init__(self, context, session):
        self.context = context
        self.session = session

    def wrap_socket(self, sock, server_hostname=None, **kwargs):
        if self.session is not None and self.session.has_ticket:
            kwargs["session"] = self.session
        return self.context.wrap_socket(sock, server_hostname=server_hostname, **kwargs)


def _remember_session(key, context, sock):
    session = getattr(sock, "session", None)
    if session is None:
        return
    if len(_sessions) >= MAX_SESSIONS:
        _sessions.clear()
    _sessions[key] = (context, session)


#: Errors after which the session can still take a QUIT (the server answered in order).
_ANSWERED = (
    TlsUnavailable,
    MalformedAuthReply,
    UnsendableCredentials,
    addresses.UnsendableAddress,
    smtplib.SMTPNotSupportedError,
)


def _hang_up(client, error):
    """End ``client`` after ``error``: with ``QUIT`` where the session is still usable
    (servers log a lost connection otherwise), else just close the socket. Not after
    a ``421`` (the server has ended the session), a broken TLS handshake, a timeout."""
    if client.sock is None or is_deadline_error(error):
        client.close()
    elif isinstance(error, smtplib.SMTPResponseException):
        if error.smtp_code == 421:
            client.close()
        else:
            quit_quietly(client)
    elif isinstance(error, _ANSWERED) or type(error) is smtplib.SMTPException:
        quit_quietly(client)
    else:
        client.close()


def quit_quietly(client):
    """End the session politely; a server that is already gone is fine."""
    try:
        client.quit()
    except (OSError, IcarusSmtpError):
        client.close()


@sensitive_variables()
def probe(mailbox, *, debuglevel=0):
    """Test ``mailbox`` without sending: connect, TLS, log in, MAIL FROM, RCPT TO, RSET.

    Returns the duration in seconds; raises what went wrong (see ``failures.classify``).
    The whole exchange shares one deadline of ``ICARUS_SMTP_TIMEOUT`` seconds.
    """
    started = time.monotonic()
    deadline = Deadline(conf.get("TIMEOUT"))
    client = connect(mailbox, deadline, debuglevel=debuglevel)
    try:
        sender, options = addresses.envelope(client, mailbox.username)
        code, reply = client.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(sender)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({sender: (code, reply)})
        client.rset()
    finally:
        quit_quietly(client)
    return time.monotonic() - started
