"""Where each of our rows is shown in the admin, for Wagtail's ``AdminURLFinder``
(log entries, reports and search link to it). Registered in ``wagtail_hooks``.

The settings themselves have Wagtail's own finder (``register_setting``). Every page
here needs the setting's change permission: users without it get no link.
"""

from django.urls import reverse
from wagtail.admin.admin_url_finder import AdminURLFinder, ModelAdminURLFinder

from ..models import (
    DeliverabilityReport,
    DeliveryAttempt,
    OutboxMessage,
    SmtpLiveConfiguration,
    SmtpStatusEvent,
)
from .delivery_log import NAMESPACE
from .permissions import user_can_change


class PermittedURLFinder(ModelAdminURLFinder):
    """A link only for users who may change the SMTP settings."""

    def get_edit_url(self, instance):
        if self.user is not None and not user_can_change(self.user):
            return None
        return self.construct_edit_url(instance)


class OutboxMessageURLFinder(PermittedURLFinder):
    """A message: its page in the delivery log."""

    edit_url_name = f"{NAMESPACE}:detail"


class DeliveryAttemptURLFinder(PermittedURLFinder):
    """An attempt: its message's page in the delivery log."""

    def construct_edit_url(self, instance):
        return reverse(f"{NAMESPACE}:detail", args=[instance.message_id])


class SettingsPartURLFinder(PermittedURLFinder):
    """The live configuration and the deliverability report: the settings page."""

    def construct_edit_url(self, instance):
        return AdminURLFinder().get_edit_url(instance.settings)


class StatusEventURLFinder(PermittedURLFinder):
    """A status event: the history."""

    def construct_edit_url(self, instance):
        return reverse("wagtail_icarus_smtp:history")


FINDERS = {
    OutboxMessage: OutboxMessageURLFinder,
    DeliveryAttempt: DeliveryAttemptURLFinder,
    SmtpLiveConfiguration: SettingsPartURLFinder,
    DeliverabilityReport: SettingsPartURLFinder,
    SmtpStatusEvent: StatusEventURLFinder,
}
