"""What is stored. One module per part of the data path:

- ``settings``: the editor's draft (``SmtpSettings``), the live configuration and the
  status history;
- ``outbox``: every message handed to the backend and its delivery attempts;
- ``alerts``: whether an alert is active; ``ratelimit``: counters of rate-limited actions.
"""

from .alerts import AlertState
from .outbox import DeliveryAttempt, DeliveryWakeup, OutboxMessage
from .ratelimit import RateLimitCounter
from .settings import CONNECTION_FIELDS, SmtpLiveConfiguration, SmtpSettings, SmtpStatusEvent

__all__ = [
    "CONNECTION_FIELDS",
    "AlertState",
    "DeliveryAttempt",
    "DeliveryWakeup",
    "OutboxMessage",
    "RateLimitCounter",
    "SmtpLiveConfiguration",
    "SmtpSettings",
    "SmtpStatusEvent",
]
