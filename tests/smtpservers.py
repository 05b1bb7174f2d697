"""Real local SMTP servers for the test suite (stdlib + aiosmtpd + trustme only).

Everything here binds ``127.0.0.1`` only and is a context manager: the server starts
on ``__enter__`` and stops on ``__exit__``; ``start()`` / ``stop()`` can also be called
directly, many times (a restarted server keeps its port).

* :class:`TestCA` -- a throw-away certificate authority (``trustme``); :func:`default_ca`
  is one shared instance per process, ``TestCA()`` makes an independent (untrusted) one.
* :class:`SmtpServer` -- a real SMTP server (aiosmtpd) with STARTTLS, implicit TLS or
  plaintext, AUTH against a user table, provider replies replayed on demand, and full
  records of what the client sent (commands, decrypted bytes, messages).
* :class:`SilentServer`, :class:`DripServer`, :class:`ScriptedServer` -- raw socket
  servers that misbehave on purpose (never answer, answer one byte at a time forever,
  replay a fixed list of replies).
* :class:`HostileServer` -- a STARTTLS server that opens like a real one and then
  attacks the client in one step: an endless reply (:class:`Flood`), a malformed AUTH
  challenge, credentials echoed back (:func:`echo_credentials`).

Facts this relies on are collected in ``/work/shared/TESTING.md`` (aiosmtpd and TLS).
Do not import Django here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import tempfile
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

__all__ = [
    "DEFAULT_HOSTNAMES",
    "DEFAULT_USERS",
    "DripServer",
    "Flood",
    "HostileServer",
    "ReceivedMessage",
    "ScriptedServer",
    "SilentServer",
    "SmtpServer",
    "TestCA",
    "default_ca",
    "echo_credentials",
    "format_reply",
    "free_port",
]

LOCALHOST = "127.0.0.1"
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1")
DEFAULT_USERS = {"mailbox@example.com": "secret"}
#: aiosmtpd's built-in AUTH mechanisms (the only ones SmtpServer can offer).
BUILTIN_AUTH_MECHANISMS = frozenset({"LOGIN", "PLAIN"})
#: How long a server may take to come up / go down on a loaded 2-core machine.
READY_TIMEOUT = 10.0
JOIN_TIMEOUT = 5.0
#: Poll interval of the raw servers' threads (how quickly they notice stop()).
_POLL = 0.1


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    aiosmtpd's ``Controller(port=0)`` breaks its own start-up probe (it connects to
    port 0), so :class:`SmtpServer` picks its real port with this first.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def format_reply(reply: str) -> str:
    """Normalise ``reply`` ("CODE text", lines separated by ``\\n``) to an SMTP reply.

    Every line gets the code of the first line unless it carries its own; all lines but
    the last use ``CODE-text``, the last one ``CODE text``. So both
    ``"534-5.7.9 Application-specific password required. Learn more at ..."`` (a single
    line copied from a log with its dash) and ``"534-5.7.9 first\\n534 5.7.9 second"``
    become valid replies. The result has ``\\r\\n`` between lines and no trailing CRLF
    (aiosmtpd's ``push()`` appends it).
    """
    lines = [line for line in reply.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not (lines[0][:3].isdigit() and len(lines[0][:3]) == 3):
        raise ValueError(f"an SMTP reply must start with a 3-digit code: {reply!r}")
    code = lines[0][:3]
    out = []
    for index, line in enumerate(lines):
        if line[:3].isdigit() and (len(line) == 3 or line[3] in " -"):
            line_code, text = line[:3], line[4:]
        else:
            line_code, text = code, line
        separator = " " if index == len(lines) - 1 else "-"
        out.append(f"{line_code}{separator}{text}")
    return "\r\n".join(out)


def _reply_code(reply: str) -> str:
    return reply.lstrip()[:3]


# --------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------


class TestCA:
    """A throw-away certificate authority (wraps ``trustme.CA()``).

    ``ca_file`` is the CA certificate (PEM) written into a private temp directory, for
    ``ssl.create_default_context(cafile=ca.ca_file)`` or Django's settings. Two
    ``TestCA()`` instances do not trust each other: a server certificate from one makes
    a client that trusts the other fail with ``ssl.SSLCertVerificationError``.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="icarus-test-ca-")
        self._finalizer = weakref.finalize(self, self._tmpdir.cleanup)
        self.ca_file = f"{self._tmpdir.name}/ca.pem"
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate as PEM bytes."""
        return self.ca.cert_pem.bytes()

    def server_context(self, *hostnames: str) -> ssl.SSLContext:
        """A server-side ``ssl.SSLContext`` with a leaf certificate for ``hostnames``.

        Defaults to ``("localhost", "127.0.0.1")``; ``ca.server_context("wrong.example")``
        gives a certificate that fails hostname verification for ``localhost``.
        Contexts are cached per name tuple (they are safe to share).
        """
        names = tuple(hostnames) or DEFAULT_HOSTNAMES
        with self._lock:
            context = self._contexts.get(names)
            if context is None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ca.issue_cert(*names).configure_cert(context)
                self._contexts[names] = context
            return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cafile=self.ca_file)

    def cleanup(self) -> None:
        """Remove the temp directory with ``ca_file`` (also done at garbage collection)."""
        self._finalizer()


_default_ca: TestCA | None = None
_default_ca_lock = threading.Lock()


def default_ca() -> TestCA:
    """The process-wide shared :class:`TestCA`, created on first use."""
    global _default_ca
    with _default_ca_lock:
        if _default_ca is None:
            _default_ca = TestCA()
        return _default_ca


# --------------------------------------------------------------------------------------
# SmtpServer (aiosmtpd)
# --------------------------------------------------------------------------------------


@dataclass
class ReceivedMessage:
    """One message accepted by :class:`SmtpServer` (also readable as ``msg["data"]``)."""

    mail_from: str
    rcpt_tos: list[str]
    #: The content exactly as received after DATA (dot-unstuffed, CRLF line ends).
    data: bytes
    #: ``email.message_from_bytes(data, policy=email.policy.default)``
    message: EmailMessage
    #: The AUTH login of the session (``None`` if it did not authenticate).
    login: str | None = None
    #: Whether the session was encrypted (STARTTLS or implicit TLS).
    tls: bool = False

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, recording what the client sends into its owner.

    ``owner`` is ``None`` for the Controller's own start-up probe connection, which is
    therefore not recorded.
    """

    def __init__(
        self, handler: Any, *, owner: SmtpServer | None, implicit_tls: bool, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner
        self._implicit_tls = implicit_tls
        self._in_auth_challenge = False

    @property
    def is_encrypted(self) -> bool:
        """True once the session runs over TLS (implicit or after STARTTLS)."""
        return self._implicit_tls or self._tls_protocol is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        owner = self._owner
        first_call = self._original_transport is None  # not the STARTTLS re-entry
        if owner is not None and first_call:
            with owner._lock:
                owner._live_protocols.add(self)
                owner.most_sessions_at_once = max(
                    owner.most_sessions_at_once, len(owner._live_protocols)
                )
        super().connection_made(transport)
        if owner is not None and first_call and owner._closing:
            transport.abort()  # accepted while stop() was already dropping connections

    def connection_lost(self, error: Exception | None) -> None:
        if self._owner is not None:
            self._owner._live_protocols.discard(self)
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        # Called with plaintext: before STARTTLS by the socket transport, afterwards
        # (and on implicit TLS) by the SSL protocol with the decrypted bytes.
        if self._owner is not None:
            self._owner._record_bytes(data, encrypted=self.is_encrypted)
        super().data_received(data)

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._cb_client_connected(reader, writer)
        owner = self._owner
        if owner is None:
            return
        original_readuntil = reader.readuntil

        async def readuntil(separator: bytes = b"\n") -> bytes:
            line = await original_readuntil(separator)
            # Command lines are read with b"\n" (DATA content with b"\r\n"); lines
            # answering an AUTH challenge are credentials, not commands.
            if separator == b"\n" and not self._in_auth_challenge:
                owner._record_command(line, encrypted=self.is_encrypted)
            return line

        reader.readuntil = readuntil  # type: ignore[method-assign]

    async def smtp_BDAT(self, arg: str) -> None:
        """CHUNKING (RFC 3030), where the owner offers it: ``BDAT <size> [LAST]`` is
        followed by exactly ``size`` bytes, read even when the chunk is refused (no
        transaction); ``LAST`` hands the joined chunks to the DATA hook, which records
        the message as after DATA. aiosmtpd itself does not implement BDAT."""
        if self._owner is None or not self._owner.chunking:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        size, _, last = arg.partition(" ")
        if not size.isdigit() or last.strip().upper() not in ("", "LAST"):
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            return
        chunk = await self._reader.readexactly(int(size))
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        chunks = self.envelope.__dict__.setdefault("chunks", [])
        chunks.append(chunk)
        if not last:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        self.envelope.original_content = self.envelope.content = b"".join(chunks)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def challenge_auth(self, *args: Any, **kwargs: Any) -> Any:
        self._in_auth_challenge = True
        try:
            return await super().challenge_auth(*args, **kwargs)
        finally:
            self._in_auth_challenge = False


class _Handler:
    """aiosmtpd handler hooks for :class:`SmtpServer`."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # the 5-argument hook must set this itself
        if not self.owner.auth_mechanisms:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        if self.owner.pipelining:  # aiosmtpd reads pipelined commands, but never says so
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        if self.owner.chunking:  # BDAT: _RecordingSMTP.smtp_BDAT
            responses = [*responses[:-1], "250-CHUNKING", responses[-1]]
        return responses

    @staticmethod
    def _ending(server: SMTP, reply: str) -> str:
        """Send ``reply`` and then close the connection, as a server ending the session
        with ``421`` does (the close runs after aiosmtpd has written the reply)."""
        asyncio.get_running_loop().call_soon(server.transport.close)
        return reply

    def _session_end(self, server: SMTP, stage: str) -> str | None:
        owner = self.owner
        if owner.end_after is None or owner.end_at != stage:
            return None
        if len(owner.messages) < owner.end_after:
            return None
        return self._ending(server, owner.end_reply)

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        owner = self.owner
        ending = self._session_end(server, "MAIL")
        if ending is not None:
            return ending
        if owner.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if owner.mail_from_reply is not None:
            return owner.mail_from_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        ending = self._session_end(server, "RCPT")
        if ending is not None:
            return ending
        if self.owner.rcpt_reply is not None:
            return self.owner.rcpt_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        owner = self.owner
        ending = self._session_end(server, "DATA")
        if ending is not None:
            return ending
        if owner.data_reply is not None:
            return owner.data_reply
        data = bytes(envelope.original_content or b"")
        # session.login_data is deprecated in aiosmtpd; auth_data is our LoginPassword
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        owner._record_message(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                message=email.message_from_bytes(data, policy=email.policy.default),
                login=login,
                tls=bool(getattr(server, "is_encrypted", False)),
            )
        )
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """A Controller whose protocol records into ``owner`` (except the start-up probe)."""

    def __init__(self, handler: Any, *, owner: SmtpServer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner
        self._probe_pending = False

    def factory(self) -> _RecordingSMTP:
        # start() blocks until its probe connection made the loop call factory(), so
        # the first call after start() is always the probe.
        probe, self._probe_pending = self._probe_pending, False
        owner = None if probe else self._owner
        if owner is not None:
            owner._count_session()
        return _RecordingSMTP(
            self.handler,
            owner=owner,
            implicit_tls=self.ssl_context is not None,
            loop=self.loop,
            **self.SMTP_kwargs,
        )

    def start(self) -> None:
        self._probe_pending = True
        super().start()


class SmtpServer:
    """A real SMTP server on ``127.0.0.1`` (aiosmtpd), for one test or many.

    Modes:

    * ``"starttls"`` -- plaintext banner, STARTTLS offered and required before anything
      but EHLO/HELO/NOOP/QUIT (AUTH only advertised after STARTTLS); port 587 style.
    * ``"ssl"`` -- implicit TLS from the first byte (port 465 style); AUTH offered.
    * ``"plain"`` -- STARTTLS offered but optional if ``offer_starttls`` (default), never
      offered with ``offer_starttls=False``. AUTH is advertised *without* TLS here, so a
      careless client could send credentials in clear; ``plaintext_transcript`` /
      ``plaintext_commands`` show whether it did.

    Authentication checks ``users`` (login -> password); ``require_auth`` (default on)
    makes MAIL FROM answer ``530 5.7.0 Authentication required`` before a successful
    AUTH. Wrong credentials get ``535 5.7.8 Authentication credentials invalid``. Only
    the mechanisms in ``auth_mechanisms`` are offered (default only LOGIN, so one wrong
    password is one AUTH attempt with ``smtplib``; ``None`` = LOGIN and PLAIN; ``()`` =
    no AUTH advertised at all).

    Provider replays (strings ``"CODE text"``, several lines separated by ``\\n``, see
    :func:`format_reply`; sent as proper multi-line SMTP replies):

    * ``auth_reply`` -- answers every AUTH attempt (after the mechanism's exchange, i.e.
      after the password was sent) with exactly this reply; a 2xx reply counts as
      success.
    * ``mail_from_reply`` / ``rcpt_reply`` / ``data_reply`` -- answer MAIL FROM (after a
      successful AUTH) / RCPT TO / the end of DATA with this reply.
    * ``end_after`` -- once this many messages were accepted (all sessions), answer the
      next ``end_at`` command (``"MAIL"``, ``"RCPT"`` or ``"DATA"``) with ``end_reply``
      (default a ``421``) and close the connection, as a server ending a session does.

    ``smtputf8=True`` advertises SMTPUTF8 (RFC 6531) and accepts UTF-8 addresses.
    ``pipelining=True`` advertises PIPELINING (RFC 2920), as Postfix, Exim, Microsoft
    365 and Gmail do; aiosmtpd answers pipelined commands in order either way.
    ``chunking=True`` advertises CHUNKING (RFC 3030) and takes ``BDAT``, as Postfix,
    Exim, Microsoft 365 and Gmail do; messages sent that way are recorded alike.

    Records (across all sessions and restarts, thread-safe; ``clear()`` resets them):
    ``messages`` (:class:`ReceivedMessage`), ``commands`` (every command line as text,
    e.g. ``"EHLO x"``, ``"STARTTLS"``, ``"AUTH LOGIN dXNlcg=="``, ``"MAIL FROM:<a@b>"``;
    the base64 lines answering an AUTH challenge and DATA content are not commands),
    ``plaintext_commands`` (those sent before TLS), ``auth_attempts`` (AUTH commands
    received, including rejected ones), ``sessions`` (connections accepted),
    ``most_sessions_at_once`` (connections open at the same time, at most),
    ``raw_transcript`` (every byte received, after TLS decryption),
    ``plaintext_transcript`` (only the bytes that travelled unencrypted) and ``reads``
    (the received bytes chunk by chunk, as the server read them: commands that arrive
    in one chunk were sent in one write).
    The aiosmtpd Controller's own start-up probe connection is not recorded.
    """

    host = LOCALHOST
    #: Subclasses: the handler (``auth_<MECHANISM>`` methods add mechanisms) and the
    #: mechanisms it adds.
    handler_class: Any = _Handler
    extra_mechanisms: tuple[str, ...] = ()

    def __init__(
        self,
        mode: str = "starttls",
        ca: TestCA | None = None,
        users: dict[str, str] | None = None,
        auth_mechanisms: Sequence[str] | None = ("LOGIN",),
        offer_starttls: bool = True,
        mail_from_reply: str | None = None,
        rcpt_reply: str | None = None,
        auth_reply: str | None = None,
        hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
        server_context: ssl.SSLContext | None = None,
        *,
        data_reply: str | None = None,
        require_auth: bool = True,
        smtputf8: bool = False,
        pipelining: bool = False,
        chunking: bool = False,
        end_after: int | None = None,
        end_at: str = "MAIL",
        end_reply: str = "421 4.7.0 Too many messages in this session, closing connection",
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        if mode not in {"starttls", "ssl", "plain"}:
            raise ValueError(f"mode must be 'starttls', 'ssl' or 'plain', not {mode!r}")
        if mode == "starttls" and not offer_starttls:
            raise ValueError("mode='starttls' always offers STARTTLS; use mode='plain'")
        mechanisms = (
            tuple(BUILTIN_AUTH_MECHANISMS)
            if auth_mechanisms is None
            else tuple(m.upper() for m in auth_mechanisms)
        )
        unknown = set(mechanisms) - BUILTIN_AUTH_MECHANISMS - set(self.extra_mechanisms)
        if unknown:
            raise ValueError(
                f"unsupported AUTH mechanisms {sorted(unknown)}; "
                f"aiosmtpd implements {sorted(BUILTIN_AUTH_MECHANISMS)}"
            )
        self.mode = mode
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.auth_mechanisms = mechanisms
        self.offer_starttls = mode == "starttls" or (mode == "plain" and offer_starttls)
        self.mail_from_reply = None if mail_from_reply is None else format_reply(mail_from_reply)
        self.rcpt_reply = None if rcpt_reply is None else format_reply(rcpt_reply)
        self.auth_reply = None if auth_reply is None else format_reply(auth_reply)
        self.data_reply = None if data_reply is None else format_reply(data_reply)
        self.require_auth = require_auth
        self.smtputf8 = smtputf8
        self.pipelining = pipelining
        self.chunking = chunking
        if end_at not in {"MAIL", "RCPT", "DATA"}:
            raise ValueError(f"end_at must be 'MAIL', 'RCPT' or 'DATA', not {end_at!r}")
        self.end_after, self.end_at = end_after, end_at
        self.end_reply = format_reply(end_reply)
        self.ready_timeout = ready_timeout
        self.ca = ca if ca is not None else default_ca()
        self.uses_tls = mode == "ssl" or self.offer_starttls
        if server_context is None and self.uses_tls:
            server_context = self.ca.server_context(*hostnames)
        self.server_context = server_context
        self.port = port or free_port(self.host)

        self._lock = threading.Condition()
        self._controller: _Controller | None = None
        self._live_protocols: set[_RecordingSMTP] = set()
        self._closing = False
        self.clear()

    # -- records ----------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.messages: list[ReceivedMessage] = []
            self.commands: list[str] = []
            self.plaintext_commands: list[str] = []
            self.sessions = 0
            self.most_sessions_at_once = 0
            self._transcript = bytearray()
            self._plaintext_transcript = bytearray()
            self._reads: list[bytes] = []

    @property
    def raw_transcript(self) -> bytes:
        """Every byte the clients sent, all sessions, after TLS decryption."""
        with self._lock:
            return bytes(self._transcript)

    @property
    def reads(self) -> list[bytes]:
        """The bytes the clients sent, chunk by chunk as read (after TLS decryption)."""
        with self._lock:
            return list(self._reads)

    @property
    def plaintext_transcript(self) -> bytes:
        """Only the bytes the clients sent unencrypted (before STARTTLS / plain mode)."""
        with self._lock:
            return bytes(self._plaintext_transcript)

    @property
    def auth_attempts(self) -> int:
        """Number of AUTH commands received (all sessions), rejected ones included."""
        with self._lock:
            return sum(1 for c in self.commands if c.split(" ", 1)[0].upper() == "AUTH")

    def wait_for_messages(self, n: int = 1, timeout: float = 10) -> list[ReceivedMessage]:
        """Block until at least ``n`` messages arrived; return (a copy of) them all.

        Raises ``TimeoutError`` if they do not arrive within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} message(s) within {timeout} s, got {len(self.messages)}"
                )
            return list(self.messages)

    def _count_session(self) -> None:
        with self._lock:
            self.sessions += 1

    def _record_bytes(self, data: bytes, *, encrypted: bool) -> None:
        with self._lock:
            self._transcript += data
            self._reads.append(bytes(data))
            if not encrypted:
                self._plaintext_transcript += data

    def _record_command(self, line: bytes, *, encrypted: bool) -> None:
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        with self._lock:
            self.commands.append(text)
            if not encrypted:
                self.plaintext_commands.append(text)

    def _record_message(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)
            self._lock.notify_all()

    # -- authentication ---------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.auth_reply is not None:
            success = _reply_code(self.auth_reply).startswith("2")
            return AuthResult(
                success=success,
                handled=False,
                message=self.auth_reply,
                auth_data=auth_data if success else None,
            )
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            expected = self.users.get(login)
            if expected is not None and password == expected:
                return AuthResult(success=True, auth_data=auth_data)
        # handled=False makes aiosmtpd really send the 535 reply (TESTING.md).
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
        )

    # -- life cycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        """Start listening on ``self.port`` (the same port after a restart)."""
        if self._controller is not None:
            raise RuntimeError("SmtpServer is already running")
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "ready_timeout": self.ready_timeout,
            "server_hostname": "localhost",
            "enable_SMTPUTF8": self.smtputf8,
            "authenticator": self._authenticate,
            "auth_exclude_mechanism": sorted(BUILTIN_AUTH_MECHANISMS - set(self.auth_mechanisms)),
        }
        if self.mode == "ssl":
            # aiosmtpd treats only STARTTLS sessions as encrypted: with
            # auth_require_tls=True it would hide AUTH on an implicit-TLS port.
            kwargs.update(ssl_context=self.server_context, auth_require_tls=False)
        elif self.mode == "starttls":
            kwargs.update(
                tls_context=self.server_context, require_starttls=True, auth_require_tls=True
            )
        else:
            kwargs.update(
                tls_context=self.server_context if self.offer_starttls else None,
                require_starttls=False,
                auth_require_tls=False,
            )
        self._closing = False
        controller = _Controller(self.handler_class(self), owner=self, **kwargs)
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            raise
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop every open client connection (idempotent)."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        done = threading.Event()

        def abort_connections() -> None:
            # Runs in the server's loop: stop accepting first, then drop connections
            # (connection_made() drops the ones accepted but not yet set up).
            try:
                self._closing = True
                if controller.server is not None:
                    controller.server.close()
                for protocol in list(self._live_protocols):
                    transport = protocol._original_transport or protocol.transport
                    if transport is not None:
                        transport.abort()
                self._live_protocols.clear()
                # Python 3.13+: also the connections still in their TLS handshake.
                abort_clients = getattr(controller.server, "abort_clients", None)
                if abort_clients is not None:
                    abort_clients()
            finally:
                done.set()

        try:
            controller.loop.call_soon_threadsafe(abort_connections)
            done.wait(JOIN_TIMEOUT)
        except RuntimeError:  # loop already closed
            pass
        controller.stop(no_assert=True)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- conveniences -----------------------------------------------------------------

    @property
    def ca_file(self) -> str:
        """CA file a client must trust to verify this server (``self.ca.ca_file``)."""
        return self.ca.ca_file

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context trusting this server's CA."""
        return self.ca.client_context()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SmtpServer {self.mode} {self.host}:{self.port} {state}>"


# --------------------------------------------------------------------------------------
# Raw misbehaving servers
# --------------------------------------------------------------------------------------


class _Connection:
    """One accepted client connection; ``sock`` is replaced when wrapped in TLS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class _RawServer:
    """Base of the socket servers: accept thread, one thread per connection.

    Subclasses implement ``_serve(conn)``. Sockets use a short timeout so the threads
    notice ``stop()``; ``stop()`` also shuts every client socket down, closes the
    listener and joins all (daemonic) threads with a timeout.
    """

    host = LOCALHOST

    def __init__(
        self, tls_context: ssl.SSLContext | None = None, *, port: int | None = None
    ) -> None:
        self.tls_context = tls_context
        self.port = port or 0
        self.sessions = 0
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[_Connection] = set()

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> _RawServer:
        """Bind (the same port again after a restart), listen and start accepting."""
        if self._listener is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(16)
        except OSError:
            listener.close()
            raise
        listener.settimeout(_POLL)
        self.port = listener.getsockname()[1]
        self._stopping = threading.Event()
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, self._stopping),
            name=f"{type(self).__name__}-accept",
            daemon=True,
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and all client sockets; join the threads (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(JOIN_TIMEOUT)
            self._accept_thread = None
        listener.close()
        with self._lock:
            connections = list(self._connections)
            threads, self._threads = self._threads, []
        for conn in connections:
            with contextlib.suppress(OSError):
                # The plain socket method: works on an SSLSocket's fd from another
                # thread without touching its SSL state; wakes up blocked reads.
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.sock.close()
        with self._lock:
            self._connections.difference_update(connections)

    def __enter__(self) -> _RawServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"

    # -- internals --------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(_POLL)
            conn = _Connection(sock)
            thread = threading.Thread(
                target=self._run_connection,
                args=(conn, stopping),
                name=f"{type(self).__name__}-conn",
                daemon=True,
            )
            with self._lock:
                self.sessions += 1
                self._connections.add(conn)
                self._threads.append(thread)
            thread.start()

    def _run_connection(self, conn: _Connection, stopping: threading.Event) -> None:
        try:
            self._serve(conn, stopping)
        except (OSError, ValueError):  # includes ssl.SSLError, client gone, closed
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()
            with self._lock:
                self._connections.discard(conn)

    def _serve(self, conn: _Connection, stopping: threading.Event) -> None:
        raise NotImplementedError

    def _record_command(self, line: bytes) -> None:
        with self._lock:
            self.commands.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))

    @staticmethod
    def _wrap_tls(conn: _Connection, context: ssl.SSLContext, stopping: threading.Event) -> bool:
        """Server-side TLS handshake on ``conn``; False if stopped or it failed."""
        tls_sock = context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
        conn.sock = tls_sock
        while not stopping.is_set():
            try:
                tls_sock.do_handshake()
                return True
            except TimeoutError:
                continue
            except (OSError, ValueError):
                return False
        return False

    @staticmethod
    def _send(conn: _Connection, data: bytes, stopping: threading.Event) -> bool:
        view = memoryview(data)
        while view and not stopping.is_set():
            try:
                sent = conn.sock.send(view)
            except TimeoutError:
                continue
            view = view[sent:]
        return not view

    @staticmethod
    def _recv(conn: _Connection, stopping: threading.Event) -> bytes | None:
        """Next chunk from the client; None on EOF, error or stop."""
        while not stopping.is_set():
            try:
                data = conn.sock.recv(4096)
            except TimeoutError:
                continue
            except (OSError, ValueError):
                return None
            return data or None
        return None


class SilentServer(_RawServer):
    """Accepts connections and never sends a byte (until stopped).

    With ``tls_context`` it first completes a server-side TLS handshake (implicit TLS)
    and then stays silent, so an ``SMTP_SSL`` client waits for a banner inside TLS.
    Without it a plain client waits for the banner; an ``SMTP_SSL`` client waits in the
    handshake. Attributes: ``host``, ``port``, ``sessions``.
    """

    def __init__(
        self, tls_context: ssl.SSLContext | None = None, *, port: int | None = None
    ) -> None:
        super().__init__(tls_context, port=port)

    def _serve(self, conn: _Connection, stopping: threading.Event) -> None:
        if self.tls_context is not None and not self._wrap_tls(conn, self.tls_context, stopping):
            return
        while self._recv(conn, stopping) is not None:
            pass  # swallow whatever the client sends, answer nothing


class DripServer(_RawServer):
    """Sends an endless, never complete banner one byte every ``interval`` seconds.

    Every line of ``text`` is turned into a continuation line (``220 x`` -> ``220-x``),
    and that is dripped forever, so a client waiting for a complete reply never gets
    one while a per-read socket timeout (longer than ``interval``) never fires: only a
    total deadline stops the client. With ``tls_context`` the TLS handshake (implicit
    TLS) completes normally first. Attributes: ``host``, ``port``, ``sessions``.
    """

    def __init__(
        self,
        tls_context: ssl.SSLContext | None = None,
        interval: float = 0.5,
        text: bytes = b"220 drip.example ESMTP ready\r\n",
        *,
        port: int | None = None,
    ) -> None:
        super().__init__(tls_context, port=port)
        self.interval = interval
        lines = [line for line in text.replace(b"\r\n", b"\n").split(b"\n") if line]
        if not lines:
            raise ValueError("DripServer needs some text to drip")
        self.stream = b"".join(
            (line[:3] + b"-" + line[4:] if line[3:4] == b" " else line) + b"\r\n" for line in lines
        )

    def _serve(self, conn: _Connection, stopping: threading.Event) -> None:
        if self.tls_context is not None and not self._wrap_tls(conn, self.tls_context, stopping):
            return
        while not stopping.is_set():
            for byte in self.stream:
                if not self._send(conn, bytes((byte,)), stopping):
                    return
                if stopping.wait(self.interval):
                    return


class ScriptedServer(_RawServer):
    """Replays a fixed list of replies, one per received line (per connection).

    ``script[0]`` is the banner, sent on connect; each further entry answers one line
    the client sends (every line is recorded in ``commands`` -- including base64 lines
    answering an AUTH challenge). Entries:

    * ``str`` -- ``"\\n"`` becomes ``"\\r\\n"`` and a final CRLF is added; no other
      change, so exact provider replies (even malformed ones) replay as written.
    * ``bytes`` -- sent verbatim.
    * ``None`` -- send nothing for this line (the client then waits).

    After a reply starting with ``354`` the message content up to the lone ``.`` line is
    collected (dot-unstuffed) into ``data_blocks``; the next script entry then answers
    the end of the data (the content lines are not matched against the script, nor
    recorded in ``commands``). After the reply to a ``STARTTLS`` line, if it starts
    with ``220`` and ``tls_context`` is given, the connection is upgraded to TLS.
    ``implicit_tls=True`` wraps the connection in TLS before the banner instead. When
    the script runs out, the connection is closed. Attributes: ``host``, ``port``,
    ``sessions``, ``commands``, ``data_blocks``, ``flooded`` (bytes sent by floods).

    Two more kinds of entries answer with what the client did:

    * a callable -- called with the received line (``bytes``, CRLF included); returns
      one of the entries above (e.g. :func:`echo_credentials`).
    * a :class:`Flood` -- answer with one line again and again (see there); the rest
      of the script is not used on this connection.
    """

    def __init__(
        self,
        script: Iterable[str | bytes | None],
        tls_context: ssl.SSLContext | None = None,
        *,
        implicit_tls: bool = False,
        port: int | None = None,
    ) -> None:
        super().__init__(tls_context, port=port)
        self.script = list(script)
        if not self.script:
            raise ValueError("a script needs at least the banner")
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls=True needs a tls_context")
        self.implicit_tls = implicit_tls
        self.data_blocks: list[bytes] = []
        self.flooded = 0

    @staticmethod
    def _encode(reply: str | bytes) -> bytes:
        if isinstance(reply, bytes):
            return reply
        text = reply.replace("\r\n", "\n").replace("\n", "\r\n")
        if not text.endswith("\r\n"):
            text += "\r\n"
        return text.encode("utf-8")

    def _serve(self, conn: _Connection, stopping: threading.Event) -> None:
        if self.implicit_tls:
            assert self.tls_context is not None
            if not self._wrap_tls(conn, self.tls_context, stopping):
                return
        replies = iter(self.script)
        buffer = bytearray()

        def readline() -> bytes | None:
            while b"\n" not in buffer:
                chunk = self._recv(conn, stopping)
                if chunk is None:
                    return None
                buffer.extend(chunk)
            index = buffer.index(b"\n") + 1
            line = bytes(buffer[:index])
            del buffer[:index]
            return line

        banner = next(replies)
        if banner is not None and not self._send(conn, self._encode(banner), stopping):
            return
        while True:
            line = readline()
            if line is None:
                return
            self._record_command(line)
            verb = line.strip().split(b" ", 1)[0].upper()
            while True:  # more than once only to answer the end of DATA
                reply = next(replies, _END)
                if reply is _END:
                    return
                if callable(reply):
                    reply = reply(line)
                if isinstance(reply, Flood):
                    self._flood(conn, reply, stopping)
                    return
                if reply is None:
                    break
                assert isinstance(reply, str | bytes)
                if not self._send(conn, self._encode(reply), stopping):
                    return
                code = reply[:3] if isinstance(reply, bytes) else reply[:3].encode()
                if (
                    verb == b"STARTTLS"
                    and code == b"220"
                    and self.tls_context is not None
                    and not isinstance(conn.sock, ssl.SSLSocket)
                ):
                    buffer.clear()  # RFC 3207: discard anything sent before the handshake
                    if not self._wrap_tls(conn, self.tls_context, stopping):
                        return
                if code != b"354":
                    break
                content = bytearray()
                while True:
                    data_line = readline()
                    if data_line is None:
                        return
                    if data_line in (b".\r\n", b".\n"):
                        break
                    content += data_line[1:] if data_line.startswith(b".") else data_line
                with self._lock:
                    self.data_blocks.append(bytes(content))
                verb = b""  # the next reply answers the end of the data

    def _flood(self, conn: _Connection, flood: Flood, stopping: threading.Event) -> None:
        """Send ``flood.line`` until ``flood.limit`` bytes went out, then stay silent
        (the reply never ends) until the client hangs up."""
        chunk = flood.line * max(1, 4096 // len(flood.line))
        while self.flooded < flood.limit:
            if not self._send(conn, chunk, stopping):
                return
            with self._lock:
                self.flooded += len(chunk)
        while self._recv(conn, stopping) is not None:
            pass


_END = object()


@dataclass(frozen=True)
class Flood:
    """A :class:`ScriptedServer` entry: an endless multi-line reply (``250-x`` forever).

    ``line`` goes out again and again, as fast as the client reads, and never as a last
    line; after ``limit`` bytes (far beyond any sane reply; it keeps a client without a
    reply budget from eating the test machine's memory) the server stays silent, so
    such a client waits for the rest of the reply until its deadline.
    """

    line: bytes = b"250-x\r\n"
    limit: int = 8 * 1024 * 1024


def echo_credentials(prefix: str = "535 5.7.8 bad credentials", transform: Any = None) -> Any:
    """A script entry answering ``AUTH PLAIN <blob>`` with ``prefix`` and the blob.

    ``transform`` (``bytes -> str``) rewrites the blob first, e.g. into URL-safe base64.
    """

    def reply(line: bytes) -> str:
        blob = line.split()[-1]
        return f"{prefix} {transform(blob) if transform else blob.decode()}"

    return reply


#: What a real server answers to the rest of a connection test (MAIL, RCPT, RSET, QUIT).
PROBE_OK = ["250 2.1.0 OK", "250 2.1.5 OK", "250 2.0.0 OK", "221 2.0.0 Bye"]
#: ... and to one message (MAIL, RCPT, DATA, end of data, QUIT).
SEND_OK = [
    "250 2.1.0 OK",
    "250 2.1.5 OK",
    "354 End data with <CR><LF>.<CR><LF>",
    "250 2.0.0 OK: queued",
    "221 2.0.0 Bye",
]


class HostileServer(ScriptedServer):
    """A STARTTLS server (port 587 style) that opens like a real one, then misbehaves.

    The script: banner; ``ehlo`` answers the first EHLO (default: a normal reply that
    offers STARTTLS; ``Flood()`` for an endless one); STARTTLS; an EHLO reply offering
    ``AUTH {mechanisms}``; ``auth`` answers the AUTH command (default: success; e.g.
    ``"334 abc"``, a challenge that is no base64, or :func:`echo_credentials`); ``then``
    answers the rest (default :data:`PROBE_OK`, :data:`SEND_OK` for a message). Every
    connection gets the whole script again. ``tls_context``: the server's certificate.
    """

    def __init__(
        self,
        tls_context: ssl.SSLContext,
        *,
        ehlo: Any = None,
        auth: Any = "235 2.7.0 Authentication successful",
        then: Sequence[Any] | None = None,
        mechanisms: str = "PLAIN",
        port: int | None = None,
    ) -> None:
        script = [
            "220 hostile.example ESMTP",
            ehlo if ehlo is not None else "250-hostile.example\n250 STARTTLS",
            "220 2.0.0 Ready to start TLS",
            f"250-hostile.example\n250 AUTH {mechanisms}",
            auth,
            *(PROBE_OK if then is None else then),
        ]
        super().__init__(script, tls_context, port=port)
