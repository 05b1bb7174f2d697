"""The panel's endpoint: GET the stored result, POST "Check again" (queues the check).

Both answer only users with the setting's change permission (403 to everyone else when
asked with ``X-Requested-With: XMLHttpRequest``, else the admin's redirect).
"""

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from .. import ratelimit, tasks
from ..models import DeliverabilityReport, SmtpSettings
from ..views import user_can_change
from . import panel


@never_cache
def deliverability_view(request):
    if not user_can_change(request.user):
        raise PermissionDenied
    smtp_settings = SmtpSettings.load(request_or_site=request)
    status = 200
    if request.method == "POST":
        status = _request_check(request, smtp_settings)
    data = panel.context(smtp_settings)
    data["html"] = panel.render_body(smtp_settings, request)
    return JsonResponse(data, status=status)


def _request_check(request, smtp_settings):
    if smtp_settings.live_config is None:
        return 409
    try:
        ratelimit.hit("dnscheck", request.user)
    except ratelimit.RateLimited:
        return 429
    DeliverabilityReport.objects.update_or_create(
        settings=smtp_settings, defaults={"requested_at": timezone.now()}
    )
    tasks.enqueue_deliverability(force=True)
    return 202
