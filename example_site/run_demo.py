"""Run the demo: migrate, set up, then the dev SMTP server, a task worker and the site.

    python example_site/run_demo.py        (what `make demo` runs)

Each of the three processes runs in its own process group, so that its children
(runserver's autoreloader, the django-q2 workers) are stopped with it. Ctrl-C or SIGTERM
stops all of them; if one of them ends by itself, the others are stopped too.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_site import demo

MANAGE = [sys.executable, "-u", str(demo.BASE_DIR / "manage.py")]
STOP_GRACE_SECONDS = 15
_print_lock = threading.Lock()


def say(text=""):
    with _print_lock:
        print(text, flush=True)


def port_in_use(host, port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(host, port, process, seconds, stopping):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None or stopping.is_set():
            return False
        if port_in_use(host, port):
            return True
        time.sleep(0.2)
    return False


class Child:
    """One long-running manage.py command with its output prefixed."""

    def __init__(self, name, *args):
        self.name = name
        self.process = subprocess.Popen(  # noqa: S603  (our own manage.py, fixed arguments)
            [*MANAGE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = threading.Thread(target=self._copy_output, daemon=True)
        self.reader.start()

    def _copy_output(self):
        for raw in self.process.stdout:
            say(f"{self.name:<6}| {raw.decode(errors='replace').rstrip()}")

    def signal_leader(self, sig):
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def signal_group(self, sig):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def group_alive(self):
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True


def stop_all(children):
    """Ask each command to stop (SIGTERM to the command itself, which stops its own
    children: qcluster its workers, runserver its reloaded child), give them time, then
    kill whatever is left of each process group."""
    for child in children:
        child.signal_leader(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(max(deadline - time.monotonic(), 0.1))
    for child in children:
        if child.process.poll() is None:
            say(f"{child.name} did not stop within {STOP_GRACE_SECONDS} s; killing it.")
        child.signal_group(signal.SIGTERM)
    time.sleep(0.5)
    for child in children:
        if child.group_alive():
            child.signal_group(signal.SIGKILL)
        child.process.wait()
        child.reader.join(timeout=2)


def banner():
    return "\n".join(
        [
            "",
            "=" * 72,
            "Dropzone Musterstadt is running.",
            f"  Website:        {demo.SITE_URL}/",
            f"  Wagtail admin:  {demo.SITE_URL}/admin/",
            f"  Admin login:    {demo.ADMIN_USERNAME} / {demo.ADMIN_PASSWORD}",
            "",
            "In the admin open Einstellungen → SMTP-Einstellungen and enter:",
            f"  E-Mail:         {demo.SMTP_USER}",
            f"  Passwort:       {demo.SMTP_PASSWORD}",
            f"  SMTP-Server:    {demo.SMTP_HOST}",
            f"  Port:           {demo.SMTP_PORT}",
            "  SMTP-Mailversand: Aktiviert",
            "Save; the status changes to 'Einrichtung abgeschlossen' once the test passed.",
            f"Then book a jump at {demo.SITE_URL}/buchung/ or use 'Passwort vergessen?'.",
            "Mail that the dev SMTP server receives is printed here and saved in",
            f"  {demo.SMTP_MAILDIR}/",
            "Press Ctrl-C to stop everything.",
            "=" * 72,
            "",
        ]
    )


def main():
    for host, port, what in [
        (demo.WEB_HOST, demo.WEB_PORT, "the website"),
        ("127.0.0.1", demo.SMTP_PORT, "the dev SMTP server"),
    ]:
        if port_in_use(host, port):
            say(f"Port {port} on {host} ({what}) is already in use. Stop what uses it first.")
            return 1

    say("Preparing the demo database …")
    for step in (["migrate", "--noinput", "-v", "0"], ["demo_setup"]):
        # Our own manage.py with fixed arguments.
        returncode = subprocess.run([*MANAGE, *step], check=False).returncode  # noqa: S603
        if returncode:
            say(f"'manage.py {step[0]}' failed (exit code {returncode}).")
            return returncode

    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    children = []
    exit_code = 0
    try:
        smtp = Child(
            "smtp",
            "icarus_smtp_devserver",
            f"--port={demo.SMTP_PORT}",
            f"--user={demo.SMTP_USER}",
            f"--password={demo.SMTP_PASSWORD}",
            f"--ca-file={demo.SMTP_CA_FILE}",
            f"--maildir={demo.SMTP_MAILDIR}",
        )
        children.append(smtp)
        if not wait_for_port("127.0.0.1", demo.SMTP_PORT, smtp.process, 60, stopping):
            if not stopping.is_set():
                say("The dev SMTP server did not start (see its output above).")
            return 1
        # The worker and the site start after the CA file is written, so they trust it.
        children.append(Child("worker", "qcluster"))
        web = Child("web", "runserver", f"{demo.WEB_HOST}:{demo.WEB_PORT}")
        children.append(web)
        if wait_for_port(demo.WEB_HOST, demo.WEB_PORT, web.process, 60, stopping):
            say(banner())
        while not stopping.wait(0.5):
            ended = [child for child in children if child.process.poll() is not None]
            if ended:
                say(f"{ended[0].name} ended (exit code {ended[0].process.returncode}).")
                exit_code = ended[0].process.returncode or 1
                break
    finally:
        say("Stopping the demo …")
        stop_all(children)
        say("Demo stopped.")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
