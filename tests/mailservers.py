"""Real mail servers from Debian for the test suite: Postfix + Dovecot SASL, and Exim.

What German hosters run (IONOS, Strato, All-Inkl: Postfix with Dovecot as the SASL
server) and what behaves differently (Exim: multi-line replies, its own AUTH). Each
server runs on ``127.0.0.1`` on a free high port with a configuration of its own in a
temporary directory, STARTTLS with a certificate from the test CA (``trustme``); no
system configuration or service is touched. Started and stopped by PID.

``.ci/install-mailservers`` installs them. Where they are missing, :func:`require`
skips a test — or fails it when ``CI=true``: CI must not pass by skipping them.

Do not import Django here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.smtpservers import TestCA, free_port

LOCALHOST = "127.0.0.1"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
EXIM = os.environ.get("ICARUS_TEST_EXIM_ROOT", "/opt/icarus-smtp-exim4") + "/usr/sbin/exim4"
#: How long a server may take to listen on a loaded 2-core machine.
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def require(*programs: str) -> None:
    """Skip (locally) or fail (``CI=true``) unless every program is installed and we
    are root (the servers switch to their own users, as on a real host)."""
    missing = [program for program in programs if not os.access(program, os.X_OK)]
    if not missing and os.geteuid() == 0:
        return
    text = f"mail server not installed ({', '.join(missing)}): run .ci/install-mailservers"
    if not missing:
        text = "the real mail servers need root (CI runs as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(text, pytrace=False)
    pytest.skip(text)


def _wait_until_listening(port: int, process: subprocess.Popen, logs: Any) -> None:
    """Until ``port`` accepts; ``logs()`` tells why when the server does not come up."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {logs()}")
        with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server not listening on port {port}: {logs()}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the process (by its PID), then SIGKILL if it does not end in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


class _MailServer:
    """Common life cycle: a private directory, a port, a certificate, start/stop."""

    host = LOCALHOST

    def __init__(self, users: dict[str, str], ca: TestCA) -> None:
        self.users = dict(users)
        self.ca = ca
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"icarus-{type(self).__name__.lower()}-"))
        os.chmod(self.dir, 0o755)  # noqa: S103 (the servers' own users read their files here)
        self.cert = self.dir / "cert.pem"
        self.key = self.dir / "key.pem"
        leaf = ca.ca.issue_cert("localhost", "127.0.0.1")
        leaf.private_key_pem.write_to_path(str(self.key))
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        os.chmod(self.key, 0o644)  # a throw-away test key, read by unprivileged daemons

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self.cleanup()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        raise NotImplementedError


class PostfixDovecot(_MailServer):
    """Postfix on a STARTTLS port (AUTH only after STARTTLS), asking Dovecot to check
    logins (``smtpd_sasl_type = dovecot``) against a password file; accepted mail is
    discarded. ``users``: login -> password (UTF-8 allowed, as Dovecot stores it)."""

    def __init__(self, users: dict[str, str], ca: TestCA, main_cf: str = "") -> None:
        super().__init__(users, ca)
        #: Extra ``main.cf`` lines, e.g. anvil's rate limits.
        self.main_cf = main_cf
        self.dovecot: subprocess.Popen | None = None
        self.master: subprocess.Popen | None = None

    def _write_dovecot(self) -> Path:
        base = self.dir / "dovecot"
        (base / "run").mkdir(parents=True)
        (base / "state").mkdir()
        users = base / "users"
        lines = [f"{login}:{{PLAIN}}{password}::::::\n" for login, password in self.users.items()]
        users.write_text("".join(lines), encoding="utf-8")
        os.chmod(users, 0o644)
        config = base / "dovecot.conf"
        config.write_text(
            textwrap.dedent(f"""\
                base_dir = {base}/run
                state_dir = {base}/state
                log_path = {base}/dovecot.log
                protocols =
                ssl = no
                disable_plaintext_auth = no
                auth_mechanisms = plain login
                passdb {{
                  driver = passwd-file
                  args = scheme=PLAIN username_format=%u {users}
                }}
                userdb {{
                  driver = static
                  args = uid=nobody gid=nogroup home=/nonexistent
                }}
                service auth {{
                  unix_listener {base}/auth-client {{
                    mode = 0666
                  }}
                }}
            """),
            encoding="utf-8",
        )
        return config

    def _write_postfix(self) -> Path:
        config = self.dir / "postfix"
        config.mkdir()
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        (config / "main.cf").write_text(
            textwrap.dedent(f"""\
                compatibility_level = 3.6
                queue_directory = {self.dir}/spool
                data_directory = {self.dir}/data
                maillog_file = {self.dir}/postfix.log
                maillog_file_prefixes = {self.dir}
                myhostname = localhost
                mydomain = localhost
                myorigin = localhost
                mydestination =
                alias_maps =
                alias_database =
                inet_interfaces = 127.0.0.1
                inet_protocols = ipv4
                smtputf8_enable = yes
                default_transport = discard
                local_transport = discard
                relay_transport = discard
                smtpd_tls_cert_file = {self.cert}
                smtpd_tls_key_file = {self.key}
                smtpd_tls_security_level = encrypt
                smtpd_tls_auth_only = yes
                smtpd_sasl_auth_enable = yes
                smtpd_sasl_type = dovecot
                smtpd_sasl_path = {self.dir}/dovecot/auth-client
                smtpd_relay_restrictions = permit_sasl_authenticated, reject
                smtpd_recipient_restrictions = permit_sasl_authenticated, reject
                smtpd_sender_restrictions = reject_sender_login_mismatch
                smtpd_sender_login_maps = inline:{{ {self._login_map()} }}
            """)
            + textwrap.dedent(self.main_cf),
            encoding="utf-8",
        )
        (config / "master.cf").write_text(
            textwrap.dedent(f"""\
                {self.port} inet n - n - - smtpd
                cleanup unix n - n - 0 cleanup
                qmgr unix n - n 300 1 qmgr
                rewrite unix - - n - - trivial-rewrite
                bounce unix - - n - 0 bounce
                defer unix - - n - 0 bounce
                trace unix - - n - 0 bounce
                verify unix - - n - 1 verify
                flush unix n - n 1000? 0 flush
                proxymap unix - - n - - proxymap
                showq unix n - n - - showq
                error unix - - n - - error
                retry unix - - n - - error
                discard unix - - n - - discard
                anvil unix - - n - 1 anvil
                scache unix - - n - 1 scache
                tlsmgr unix - - n 1000? 1 tlsmgr
                postlog unix-dgram n - n - 1 postlogd
            """),
            encoding="utf-8",
        )
        return config

    def _login_map(self) -> str:
        return ", ".join(f"{login}={login}" for login in self.users)

    def start(self) -> None:
        dovecot_config = self._write_dovecot()
        postfix_config = self._write_postfix()
        self.dovecot = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(dovecot_config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "dovecot.err", "wb"),  # noqa: SIM115 (the process keeps it)
        )
        socket_path = self.dir / "dovecot" / "auth-client"
        deadline = time.monotonic() + READY_TIMEOUT
        while not socket_path.exists():
            if self.dovecot.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {_tail(self.dir / 'dovecot.err')}")
            time.sleep(0.1)
        # Creates the queue's subdirectories with the owners Postfix wants.
        subprocess.run(
            [POSTFIX, "-c", str(postfix_config), "check"],
            check=True,
            capture_output=True,
        )
        self.master = subprocess.Popen(
            [POSTFIX_MASTER, "-c", str(postfix_config), "-d"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "master.err", "wb"),  # noqa: SIM115 (the process keeps it)
        )
        _wait_until_listening(self.port, self.master, self.log)

    def stop(self) -> None:
        _stop(self.master)
        _stop(self.dovecot)
        self.master = self.dovecot = None

    def log(self) -> str:
        names = ("master.err", "postfix.log", "dovecot.err", "dovecot/dovecot.log")
        return "\n".join(_tail(self.dir / name) for name in names)


class Exim(_MailServer):
    """Exim 4 on a STARTTLS port: AUTH PLAIN and LOGIN (after STARTTLS) against
    ``users``; accepted mail is discarded. ``refused_sender`` is refused at MAIL FROM
    with a multi-line reply, as Exim writes them. ``chunking=False`` stops Exim from
    offering CHUNKING (``BDAT``), which it does by default."""

    def __init__(
        self, users: dict[str, str], ca: TestCA, refused_sender: str = "", chunking: bool = True
    ) -> None:
        super().__init__(users, ca)
        self.refused_sender = refused_sender
        self.chunking = chunking
        self.process: subprocess.Popen | None = None

    def _condition(self, user_var: str, password_var: str) -> str:
        checks = "".join(
            f"{{and{{{{eq{{{user_var}}}{{{_exim_quote(login)}}}}}"
            f"{{eq{{{password_var}}}{{{_exim_quote(password)}}}}}}}}}"
            for login, password in self.users.items()
        )
        return f"${{if or{{{checks}}}}}"

    def _write(self) -> Path:
        spool = self.dir / "spool"
        spool.mkdir()
        shutil.chown(spool, "Debian-exim", "Debian-exim")
        config = self.dir / "exim.conf"
        refused = ""
        if self.refused_sender:
            refused = (
                f"  deny senders = {self.refused_sender}\n"
                "       message = 5.7.1 Sender address rejected by local policy\\n"
                "This mailbox may not send through this server\\n"
                "Contact the postmaster\n"
            )
        config.write_text(
            f"""\
primary_hostname = localhost
keep_environment =
spool_directory = {spool}
log_file_path = {spool}/%slog
pid_file_path = {spool}/exim.pid
daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
tls_advertise_hosts = *
tls_certificate = {self.cert}
tls_privatekey = {self.key}
auth_advertise_hosts = ${{if eq{{$tls_in_cipher}}{{}}{{}}{{*}}}}
chunking_advertise_hosts = {"*" if self.chunking else ""}
acl_smtp_mail = acl_check_mail
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_mail:
{refused}  accept

acl_check_rcpt:
  accept authenticated = *
  deny message = Relay not permitted

begin routers

discard_all:
  driver = redirect
  data = :blackhole:

begin transports

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = {self._condition("$auth2", "$auth3")}
  server_set_id = $auth2
  server_advertise_condition = ${{if def:tls_in_cipher}}

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = {self._condition("$auth1", "$auth2")}
  server_set_id = $auth1
  server_advertise_condition = ${{if def:tls_in_cipher}}
""",
            encoding="utf-8",
        )
        return config

    def start(self) -> None:
        config = self._write()
        self.process = subprocess.Popen(
            # -bdf: daemon in the foreground (its PID is ours to stop); no queue runner
            [EXIM, "-C", str(config), "-bdf", "-oX", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "exim.err", "wb"),  # noqa: SIM115 (the process keeps it)
        )
        _wait_until_listening(self.port, self.process, self.log)

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def mainlog(self) -> str:
        """Exim's main log (one line per event; the reject log repeats refusals)."""
        return _tail(self.dir / "spool" / "mainlog")

    def log(self) -> str:
        names = ("exim.err", "spool/mainlog", "spool/rejectlog", "spool/paniclog")
        return "\n".join(_tail(self.dir / name) for name in names)


def _exim_quote(value: str) -> str:
    """``value`` inside an Exim string expansion: backslash before ``\\ $ { }``."""
    for char in "\\${}":
        value = value.replace(char, "\\" + char)
    return value
