"""The last deliverability check (SPF, DKIM, DMARC, MX) of the live mailbox's domain."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .settings import SmtpSettings


class DeliverabilityReport(models.Model):
    """The last deliverability check (SPF, DKIM, DMARC, MX) of the live mailbox's domain.

    ``results`` holds one entry per check as ``deliverability.checks.Result.as_dict``
    (machine codes, translated when shown). ``regressed`` names the checks that passed
    before and fail now: they keep the alert active until they pass again.
    """

    settings = models.OneToOneField(
        SmtpSettings, on_delete=models.CASCADE, related_name="deliverability"
    )
    domain = models.CharField(_("domain"), max_length=253, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    checked_at = models.DateTimeField(_("checked"), null=True, blank=True)
    #: When "Check again" was pressed; a check is pending while it is newer than
    #: ``checked_at``.
    requested_at = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(default=list, blank=True)
    regressed = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("deliverability check")
        verbose_name_plural = _("deliverability checks")

    def __str__(self):
        return f"{self.domain} {self.checked_at:%Y-%m-%d %H:%M}" if self.checked_at else self.domain

    @property
    def pending(self):
        return self.requested_at is not None and (
            self.checked_at is None or self.requested_at > self.checked_at
        )
