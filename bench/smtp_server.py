"""The bench's SMTP server, in a process of its own (so it does not share the GIL with
the client being measured): STARTTLS + AUTH LOGIN with the test CA's certificate for
localhost/127.0.0.1, advertising PIPELINING and CHUNKING (``BDAT``) as Postfix, Exim,
Gmail and Microsoft 365 do (aiosmtpd reads pipelined commands in order; ``BDAT`` is the
test server's). It counts messages and keeps nothing.

Prints one JSON line {port, ca_file, control_port}; stops when stdin closes. A connection
to ``control_port`` (plain TCP on 127.0.0.1) reads the number of messages received so far;
a client that then sends ``times N`` reads when the last N arrived (``time.time()`` at
the end of their DATA, space-separated).
"""

import json
import logging
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import smtpservers
from tests.smtpservers import SmtpServer, _Controller, _Handler, _RecordingSMTP, default_ca

#: Largest message the bench server takes (the memory bench sends 1 MB attachments).
MAX_MESSAGE = 64 * 1024 * 1024


class FastDataSMTP(_RecordingSMTP):
    """Reads DATA in one search for the terminator instead of line by line (aiosmtpd
    takes 0.2-0.4 s per megabyte that way: the server, not the client, would be
    measured). The content is not kept; bytes after the terminator stay buffered."""

    async def smtp_DATA(self, arg):
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._reader._limit = MAX_MESSAGE  # the line limit would stop the search
        try:
            await self._reader.readuntil(b"\r\n.\r\n")
        finally:
            self._reader._limit = self.line_length_limit
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


class FastController(_Controller):
    def factory(self):
        protocol = super().factory()
        protocol.__class__ = FastDataSMTP  # same state, the faster DATA
        protocol._smtp_methods["DATA"] = protocol.smtp_DATA  # bound at __init__
        return protocol


class CountingHandler(_Handler):
    """Accepts every message without parsing it (a bench sends gigabytes)."""

    async def handle_DATA(self, server, session, envelope):
        self.owner.count_message()
        return "250 2.0.0 OK: queued"


class CountingServer(SmtpServer):
    """Counts messages; records no transcript, commands or bodies."""

    handler_class = CountingHandler

    #: Arrival times kept for ``times N`` (the latest ones).
    KEEP_TIMES = 1000

    def clear(self):
        super().clear()
        self.received = 0
        self.arrivals = []

    def count_message(self):
        with self._lock:
            self.received += 1
            self.arrivals.append(time.time())
            del self.arrivals[: -self.KEEP_TIMES]

    def _record_bytes(self, data, *, encrypted):
        pass

    def _record_command(self, line, *, encrypted):
        pass


def serve_count(server):
    """Answer each connection to the returned port with the count so far, then, if the
    client asks ``times N``, with the arrival times of the last N messages."""
    listener = socket.create_server(("127.0.0.1", 0))

    def loop():
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(f"{server.received}\n".encode())
                conn.settimeout(5)
                try:
                    request = conn.makefile().readline().split()
                except OSError:
                    continue
                if request[:1] == ["times"]:
                    with server._lock:
                        times = server.arrivals[-int(request[1]) :]
                    conn.sendall((" ".join(f"{t:.6f}" for t in times) + "\n").encode())

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1]


def main():
    # aiosmtpd's deprecation notes (one per session) would cost the server's CPU.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    user, password = sys.argv[1], sys.argv[2]
    ca = default_ca()
    smtpservers._Controller = FastController  # this process's servers read DATA fast
    with CountingServer(
        mode="starttls", ca=ca, users={user: password}, pipelining=True, chunking=True
    ) as server:
        control_port = serve_count(server)
        started = {"port": server.port, "ca_file": ca.ca_file, "control_port": control_port}
        print(json.dumps(started), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
