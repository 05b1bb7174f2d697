"""What is stored. One module per part of the data path:

- ``settings``: the editor's draft (``SmtpSettings``), the live configuration and the
  status history;
- ``outbox``: every message handed to the backend and its delivery attempts;
- ``alerts``: whether an alert is active; ``ratelimit``: counters of rate-limited actions;
- ``deliverability``: the last SPF/DKIM/DMARC/MX check of the live mailbox's domain.
"""

from .alerts import AlertState
from .deliverability import DeliverabilityReport
from .outbox import DeliveryAttempt, DeliveryWakeup, OutboxMessage
from .ratelimit import RateLimitCounter
from .settings import CONNECTION_FIELDS, SmtpLiveConfiguration, SmtpSettings, SmtpStatusEvent

__all__ = [
    "CONNECTION_FIELDS",
    "AlertState",
    "DeliverabilityReport",
    "DeliveryAttempt",
    "DeliveryWakeup",
    "OutboxMessage",
    "RateLimitCounter",
    "SmtpLiveConfiguration",
    "SmtpSettings",
    "SmtpStatusEvent",
]
