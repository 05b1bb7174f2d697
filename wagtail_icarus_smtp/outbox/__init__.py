"""The outbox: mail as data. Every message the site hands over is a row first, then
delivered, retried and finally purged.

    accept → claim → deliver (store records each outcome) → housekeeping
    alerts watch the outcomes; notices tell the owners when the mail server changes.

The names below are the room's public face for the backend, the admin and the tasks.
"""

from .delivery import (
    MAX_BATCHES,
    deliver,
    deliver_accepted,
    drain,
    resume,
    schedule_retry,
    send_now,
)
from .housekeeping import purge, summary
from .intake import Envelope, accept, discard, envelope_of, hand_over, release, resend
from .leases import claim
from .store import Result, retry_delay, via

__all__ = [
    "MAX_BATCHES",
    "Envelope",
    "Result",
    "accept",
    "claim",
    "deliver",
    "deliver_accepted",
    "discard",
    "drain",
    "envelope_of",
    "hand_over",
    "purge",
    "release",
    "resend",
    "resume",
    "retry_delay",
    "schedule_retry",
    "send_now",
    "summary",
    "via",
]
