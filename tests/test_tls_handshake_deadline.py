"""The total deadline also bounds a TLS handshake that a server drips byte by byte.

CPython bounds a whole handshake by the socket's timeout (not each read), and transport
sets that timeout to what is left of the deadline before the handshake starts.
"""

import socket
import threading
import time

import pytest

from tests import smtpservers
from tests.utils import submit
from wagtail_icarus_smtp.models import SmtpSettings


class HandshakeDripServer:
    """Implicit-TLS port that answers the ClientHello with a TLS record header promising
    16 KiB, then one byte every 0.2 s: each read gets a byte, none completes the record."""

    def __init__(self):
        self.port = smtpservers.free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed: stop
                return
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn):
        with conn:
            try:
                conn.recv(4096)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")  # handshake record, 16 KiB long
                while not self.stopping.wait(0.2):
                    conn.sendall(b"\x02")
            except OSError:
                return

    def stop(self):
        self.stopping.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.mark.django_db
def test_a_dripping_tls_handshake_times_out_within_the_deadline(trust, settings):
    settings.ICARUS_SMTP_TIMEOUT = 2
    server = HandshakeDripServer()
    trust(server.port, "ssl")
    try:
        started = time.monotonic()
        submit(port=str(server.port))
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.failure_category == "timeout"
    assert elapsed < 4
