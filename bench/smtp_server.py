"""The bench's SMTP server, in a process of its own (so it does not share the GIL with
the client being measured). Prints one JSON line {port, ca_file}; stops when stdin closes."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.smtpservers import SmtpServer, default_ca


class CountingServer(SmtpServer):
    """Counts messages instead of keeping them: a bench sends thousands."""

    def _record_message(self, message):
        with self._lock:
            self.received = getattr(self, "received", 0) + 1


def main():
    user, password = sys.argv[1], sys.argv[2]
    ca = default_ca()
    with CountingServer(mode="starttls", ca=ca, users={user: password}) as server:
        print(json.dumps({"port": server.port, "ca_file": ca.ca_file}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
