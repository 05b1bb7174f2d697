"""Who may see and change the SMTP settings: the setting's "change" permission, through
Wagtail's registered permission policy (one place, used by every view, menu item,
banner and dashboard panel)."""

from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from ..models import SmtpSettings


def policy():
    """Wagtail's permission policy registered for the setting."""
    return SmtpSettings.get_permission_policy()


def user_can_change(user):
    return policy().user_has_permission(user, "change")


class ChangePermissionRequired(PermissionCheckedMixin):
    """Class-based views: 403 (Wagtail's denial) without the "change" permission."""

    permission_required = "change"

    @property
    def permission_policy(self):
        return policy()
