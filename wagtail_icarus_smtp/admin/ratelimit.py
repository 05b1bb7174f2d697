"""Limits for actions that make the server connect out or send: connection tests, test
e-mails, the delivery log's release and resend.

Counted in the database per user and for the whole site, in fixed windows, so the limits
hold across all web processes (Django's default cache is per process) and sites need no
shared cache. Over the limit the caller gets ``RateLimited`` with a translated message —
nothing is queued.
"""

import time
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import conf
from ..models import RateLimitCounter


def _counters():
    return RateLimitCounter.objects


class RateLimited(Exception):
    def __init__(self, retry_after):
        self.retry_after = retry_after
        super().__init__(
            _("Too many attempts. Please wait %(seconds)d seconds and try again.")
            % {"seconds": retry_after}
        )


def _increment(key):
    return _counters().filter(key=key).update(count=F("count") + 1)


def _count(key, window):
    """Add one to ``key`` in the current window; return the new count and the seconds
    left in the window. The update comes first, so the row stays locked until the
    count is read: two processes never read the same count."""
    now = time.time()
    bucket = int(now // window)
    key = f"{key}:{bucket}"
    with transaction.atomic():
        if not _increment(key):
            expires_at = datetime.fromtimestamp((bucket + 1) * window, tz=UTC)
            try:
                with transaction.atomic():
                    _counters().create(key=key, count=1, expires_at=expires_at)
            except IntegrityError:  # another process created it meanwhile
                _increment(key)
        count = _counters().filter(key=key).values_list("count", flat=True).get()
    return count, window - int(now % window)


def hit(action, user):
    """Count one ``action`` ("test", "testmail", "outbox") by ``user``; raise when over
    a limit. An action the site's ``ICARUS_SMTP_RATE_LIMITS`` leaves out gets ours."""
    limits = conf.get("RATE_LIMITS")
    per_user, per_site, window = limits.get(action) or conf.DEFAULTS["RATE_LIMITS"][action]
    _counters().filter(expires_at__lt=timezone.now()).delete()
    user_key = getattr(user, "pk", None) or "anonymous"
    for key, limit in ((f"{action}:user:{user_key}", per_user), (f"{action}:all", per_site)):
        count, retry_after = _count(key, window)
        if count > limit:
            raise RateLimited(retry_after)
