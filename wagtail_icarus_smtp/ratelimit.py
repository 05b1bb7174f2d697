"""Limits for actions that make the server connect out: connection tests, test e-mails.

Counted in Django's cache per user and globally, in fixed windows. Over the limit the
caller gets ``RateLimited`` with a translated message — nothing is queued.
"""

import time

from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from . import conf


class RateLimited(Exception):
    def __init__(self, retry_after):
        self.retry_after = retry_after
        super().__init__(
            _("Too many attempts. Please wait %(seconds)d seconds and try again.")
            % {"seconds": retry_after}
        )


def _count(key, window):
    bucket = int(time.time() // window)
    full_key = f"wagtail_icarus_smtp:rl:{key}:{bucket}"
    cache.add(full_key, 0, timeout=window + 5)
    try:
        return cache.incr(full_key), window - int(time.time() % window)
    except ValueError:  # expired between add and incr
        cache.set(full_key, 1, timeout=window + 5)
        return 1, window


def hit(action, user):
    """Count one ``action`` ("test" or "testmail") by ``user``; raise when over a limit."""
    per_user, per_site, window = conf.get("RATE_LIMITS")[action]
    user_key = getattr(user, "pk", None) or "anonymous"
    for key, limit in ((f"{action}:user:{user_key}", per_user), (f"{action}:all", per_site)):
        count, retry_after = _count(key, window)
        if count > limit:
            raise RateLimited(retry_after)
