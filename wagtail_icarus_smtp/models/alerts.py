"""Alert state: whether a kind of alert is active and when it was last announced."""

from django.db import models


class AlertState(models.Model):
    """Whether one kind of alert is active, and when it was last announced."""

    kind = models.CharField(max_length=30, unique=True)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    def __str__(self):
        return f"{self.kind}: {'active' if self.active else 'ok'}"
