"""A local SMTP server with STARTTLS and AUTH, for the demo site and for development.

It behaves like a small mail provider's submission port: TLS (STARTTLS) before AUTH,
one mailbox with one password, and by default only that mailbox as envelope sender.
Its certificates come from a throw-away CA made with ``trustme`` at every start; the
CA certificate is written to a file so that the site can trust it through
``ICARUS_SMTP_CA_FILE``. No private key is ever written to disk.

Every accepted message is saved as an ``.eml`` file and summed up on ``stdout``.

``aiosmtpd`` and ``trustme`` are the optional extra ``wagtail-icarus-smtp[devserver]``;
they are imported only when a server starts, so this module imports without them.
"""

import hmac
import itertools
import logging
import os
import signal
import ssl
import tempfile
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2525
DEFAULT_USER = "system@dropzone-musterstadt.de"
DEFAULT_PASSWORD = "demo-passwort"  # noqa: S105  (a local development server's demo login)
DEFAULT_CA_FILE = "icarus-devserver-ca.pem"
DEFAULT_MAILDIR = "icarus-devserver-mail"
INSTALL_HINT = 'pip install "wagtail-icarus-smtp[devserver]"'

#: Names the server certificate is valid for; editors enter the first one.
CERT_NAMES = ("localhost", "127.0.0.1")

AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"


class DevServerError(Exception):
    """The development server cannot start; the message says why and what to do."""


def load_dependencies():
    """Import aiosmtpd and trustme, or explain how to install them."""
    try:
        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult
    except ImportError as exc:
        raise DevServerError(
            f"The development SMTP server needs aiosmtpd and trustme ({exc.name} is "
            f"missing). Install them with: {INSTALL_HINT}"
        ) from exc
    return Controller, AuthResult, trustme


class MailSaver:
    """aiosmtpd handler: checks the envelope sender, saves each message as a file."""

    def __init__(self, maildir, *, user, any_sender, report):
        self.maildir = Path(maildir)
        self.user = user
        self.any_sender = any_sender
        self.report = report
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Like IONOS or Strato: the envelope sender must be the mailbox that logged in.
        if not self.any_sender and address.casefold() != self.user.casefold():
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user {self.user}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        path = self.save(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(envelope.original_content)
        self.report(
            f"[{time.strftime('%H:%M:%S')}] mail received\n"
            f"  From:    {headers.get('From', '')}\n"
            f"  To:      {', '.join(envelope.rcpt_tos)}\n"
            f"  Subject: {headers.get('Subject', '')}\n"
            f"  File:    {path}"
        )
        return "250 2.0.0 OK: message saved"

    def save(self, mail_from, rcpt_tos, content):
        """Write one message (with its envelope as headers on top) and return the path."""
        with self._lock:
            number = next(self._numbers)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{number:04d}.eml"
        envelope_headers = (
            f"Return-Path: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        ).encode()
        self.maildir.mkdir(parents=True, exist_ok=True)
        path = self.maildir / name
        write_atomically(path, envelope_headers + content)
        return path


def make_authenticator(user, password, auth_result, report):
    """Return an aiosmtpd authenticator that accepts exactly one login."""
    expected_user = user.casefold().encode()
    expected_password = password.encode()

    def authenticate(server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", b"") or b""
        secret = getattr(auth_data, "password", b"") or b""
        login_text = login.decode(errors="replace")
        ok = hmac.compare_digest(login_text.casefold().encode(), expected_user)
        ok = hmac.compare_digest(secret, expected_password) and ok
        report(
            f"[{time.strftime('%H:%M:%S')}] AUTH {mechanism} {login_text!r}: "
            + ("accepted" if ok else "rejected")
        )
        if ok:
            return auth_result(success=True)
        # handled=False: aiosmtpd sends the reply; with handled=True the client would hang.
        return auth_result(success=False, handled=False, message=AUTH_FAILED)

    return authenticate


def _hide_aiosmtpd_noise(record):
    # aiosmtpd logs this warning itself on every successful AUTH (its own legacy field).
    return not record.getMessage().startswith("Session.login_data is deprecated")


def write_atomically(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DevServer:
    """The server: ``start()``, ``stop()``, or ``serve_forever()`` until a signal."""

    def __init__(
        self,
        *,
        port=DEFAULT_PORT,
        user=DEFAULT_USER,
        password=DEFAULT_PASSWORD,
        ca_file=DEFAULT_CA_FILE,
        maildir=DEFAULT_MAILDIR,
        any_sender=False,
        host=DEFAULT_HOST,
        report=print,
    ):
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.ca_file = Path(ca_file).resolve()
        self.maildir = Path(maildir).resolve()
        self.any_sender = any_sender
        self.report = report
        self._controller = None

    def start(self):
        controller_class, auth_result, trustme = load_dependencies()
        logging.getLogger("mail.log").addFilter(_hide_aiosmtpd_noise)
        ca = trustme.CA(organization_name="wagtail-icarus-smtp devserver")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*CERT_NAMES).configure_cert(tls_context)
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.ca_file, ca.cert_pem.bytes())
        self.maildir.mkdir(parents=True, exist_ok=True)
        handler = MailSaver(
            self.maildir, user=self.user, any_sender=self.any_sender, report=self.report
        )
        self._controller = controller_class(
            handler,
            hostname=self.host,
            port=self.port,
            server_hostname=CERT_NAMES[0],
            ready_timeout=30,
            # SMTP parameters: STARTTLS first (only enforced with tls_context), then AUTH.
            tls_context=tls_context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=make_authenticator(self.user, self.password, auth_result, self.report),
            enable_SMTPUTF8=True,
        )
        try:
            self._controller.start()
        except OSError as exc:
            self._controller = None
            raise DevServerError(
                f"Cannot listen on {self.host}:{self.port} ({exc.strerror or exc}). "
                "Is another server using this port? Choose another one with --port."
            ) from exc

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def serve_forever(self, on_started=None):
        """Run until SIGINT or SIGTERM, then stop cleanly. Call from the main thread."""
        stopping = threading.Event()

        def request_stop(signum, frame):
            stopping.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            if on_started is not None:
                on_started(self)
            while not stopping.wait(1):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def admin_values(self):
        """What an editor enters in Settings → SMTP-Einstellungen to use this server."""
        return {
            "SMTP-Server": CERT_NAMES[0],
            "Port": str(self.port),
            "E-Mail": self.user,
            "Passwort": self.password,
        }
