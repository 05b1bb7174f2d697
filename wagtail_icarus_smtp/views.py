"""Admin views: the JSON status that the settings page polls."""

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from . import report
from .models import SmtpSettings


def user_can_change(user):
    return SmtpSettings.get_permission_policy().user_has_permission(user, "change")


@never_cache
def status_view(request):
    """The current report as JSON (no secret in it). 403 without change permission."""
    if not user_can_change(request.user):
        raise PermissionDenied
    return JsonResponse(report.build(SmtpSettings.load(request_or_site=request)))
