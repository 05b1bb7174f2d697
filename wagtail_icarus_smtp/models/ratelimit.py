"""Rate-limit counters shared by every process (test e-mails, resend, release)."""

from django.db import models


class RateLimitCounter(models.Model):
    """Attempts of one action in one fixed time window, shared by every process."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.key}: {self.count}"
