"""The total deadline of an exchange: one point in time for dial, TLS and every reply.

Per-read timeouts do not bound a server that drips one byte at a time; this does.
"""

import socket
import time


class DeadlineExceeded(TimeoutError):
    """The total deadline of one SMTP exchange has passed."""


class Deadline:
    """A point in time after which an exchange must give up."""

    def __init__(self, seconds):
        self.expires = time.monotonic() + seconds

    def remaining(self):
        left = self.expires - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the SMTP deadline has passed")
        return left


def is_deadline_error(error):
    """True when ``error`` (or what caused it) is our deadline or a socket timeout."""
    while error is not None:
        if isinstance(error, (DeadlineExceeded, socket.timeout)):
            return True
        error = error.__cause__ or error.__context__
    return False
