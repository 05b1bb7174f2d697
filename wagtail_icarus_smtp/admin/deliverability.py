"""The "Deliverability" panel of the settings page and its endpoint.

The panel shows what is stored (``DeliverabilityReport``): one line per check, the
records to add ready to copy, when it was checked, and "Check again". It never asks the
DNS itself. The endpoint answers GET with the stored result and POST ("Check again") by
queueing the check; both only to users with the setting's change permission (403 to
everyone else when asked with ``X-Requested-With: XMLHttpRequest``).
"""

from datetime import timedelta

from django import forms
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views.decorators.cache import never_cache
from wagtail.admin.panels import Panel

from .. import conf, queue
from ..deliverability import checks, texts
from ..models import DeliverabilityReport, SmtpSettings
from . import ratelimit
from .permissions import user_can_change
from .stored import stored

BODY_TEMPLATE = "wagtail_icarus_smtp/deliverability/body.html"
MEDIA = forms.Media(
    css={"all": ["wagtail_icarus_smtp/css/admin.css"]},
    js=["wagtail_icarus_smtp/js/deliverability.js"],
)


def stored_report(smtp_settings):
    try:
        return smtp_settings.deliverability
    except ObjectDoesNotExist:
        return None


def context(smtp_settings):
    """What the panel body shows for ``smtp_settings`` (saved): JSON-serialisable."""
    live = smtp_settings.live_config if smtp_settings.pk else None
    report = stored_report(smtp_settings) if smtp_settings.pk else None
    checked = report is not None and report.checked_at is not None
    rows = texts.rows(report.results if checked else [])
    return {
        "live": live is not None,
        "domain": report.domain if checked else "",
        "checked_at": report.checked_at.isoformat() if checked else "",
        "checked_display": (
            date_format(localtime(report.checked_at), "SHORT_DATETIME_FORMAT") if checked else ""
        ),
        "pending": bool(report is not None and report.pending),
        "stale": is_stale(report),
        "rows": [row for row in rows if row["check"] != checks.REPLY_TO],
        "info_rows": [row for row in rows if row["check"] == checks.REPLY_TO],
    }


def is_stale(report):
    """ "Check again" was pressed long ago and no worker has picked the check up."""
    if report is None or not report.pending:
        return False
    limit = conf.get("DNS_TIMEOUT") * 5 + conf.get("STALE_MARGIN")  # five checks' deadlines
    return report.requested_at < timezone.now() - timedelta(seconds=limit)


def render_body(smtp_settings, request=None):
    return render_to_string(BODY_TEMPLATE, context(smtp_settings), request=request)


class DeliverabilityPanel(Panel):
    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_icarus_smtp/deliverability/panel.html"

        @property
        def media(self):
            return MEDIA

        def get_context_data(self, parent_context=None):
            data = super().get_context_data(parent_context)
            if self.instance.pk:
                data["body"] = render_body(stored(self), self.request)
                data["url"] = reverse("wagtail_icarus_smtp:deliverability")
            return data


@never_cache
def deliverability_view(request):
    """GET: the stored result; POST: "Check again" (202 queued, 409 nothing live yet,
    429 rate limited). JSON with the panel body's HTML either way."""
    if not user_can_change(request.user):
        raise PermissionDenied
    smtp_settings = SmtpSettings.load(request_or_site=request)
    status = 200
    if request.method == "POST":
        status = _request_check(request, smtp_settings)
    data = context(smtp_settings)
    data["html"] = render_body(smtp_settings, request)
    return JsonResponse(data, status=status)


def _request_check(request, smtp_settings):
    if smtp_settings.live_config is None:
        return 409
    try:
        ratelimit.hit("dnscheck", request.user)
    except ratelimit.RateLimited:
        return 429
    # What the answer shows: the row read with the settings is out of date now.
    smtp_settings.deliverability, _ = DeliverabilityReport.objects.update_or_create(
        settings=smtp_settings, defaults={"requested_at": timezone.now()}
    )
    queue.enqueue_deliverability(force=True)
    return 202
