"""Admin views: status (JSON and the page's fragment), test e-mail, the paused-sending
banner and the history.

Every view answers only users with the setting's change permission; the others get
403 (requests with ``X-Requested-With: XMLHttpRequest``) or the admin's redirect.
"""

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from wagtail.admin import messages
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, UserColumn
from wagtail.admin.views.generic import IndexView

from .. import audit
from .. import status as states
from ..models import SmtpSettings, SmtpStatusEvent
from ..smtp import headers
from . import panels, ratelimit, replies, report, testmail
from .permissions import ChangePermissionRequired, user_can_change


def edit_url(smtp_settings):
    return reverse(
        "wagtailsettings:edit",
        args=[SmtpSettings._meta.app_label, SmtpSettings._meta.model_name, smtp_settings.pk],
    )


def is_xhr(request):
    return request.headers.get("x-requested-with") == "XMLHttpRequest"


@never_cache
def status_view(request):
    """The current report as JSON (no secret in it). 403 without change permission."""
    if not user_can_change(request.user):
        raise PermissionDenied
    return JsonResponse(report.build(SmtpSettings.load(request_or_site=request)))


@never_cache
def status_fragment_view(request):
    """The status bar and the history as the page renders them (``panels/status.html``,
    ``panels/history.html``), for the status bar's controller to swap in while a test
    runs, and whether a test e-mail can be sent. 403 without change permission."""
    if not user_can_change(request.user):
        raise PermissionDenied
    smtp_settings = SmtpSettings.load(request_or_site=request)
    context = {
        **panels.status_context(smtp_settings),
        **panels.history_context(smtp_settings),
        "testmail_available": not testmail.unavailable_reason(smtp_settings),
    }
    return render(request, "wagtail_icarus_smtp/panels/status_fragment.html", context)


@never_cache
def banner_view(request):
    """The banner for every admin page while no mail goes out (switched off, nothing
    live, failing, delayed) or an alert is active: JSON, or 204 when there is nothing
    to say."""
    if not user_can_change(request.user):
        raise PermissionDenied
    smtp_settings = SmtpSettings.load(request_or_site=request)
    state = report.build(smtp_settings, events=0)
    # Whenever mail cannot go out: why, and how many messages wait (report.sending_note).
    texts = [state["sending_note"]] if state["sending_note"] else []
    texts += [alert["text"] for alert in state["alerts"]]
    if not texts:
        return HttpResponse(status=204)
    return JsonResponse(
        {"text": " ".join(texts), "link_text": _("SMTP settings"), "url": edit_url(smtp_settings)}
    )


@require_POST
@sensitive_post_parameters()
@never_cache
def testmail_view(request):
    """Send a test e-mail through the configuration on the page (``testmail.target``);
    JSON for XHR, else a message."""
    if not user_can_change(request.user):
        raise PermissionDenied
    smtp_settings = SmtpSettings.load(request_or_site=request)
    to = request.POST.get("to", "").strip()
    try:
        headers.check_address(to)
    except ValidationError:
        return _testmail_response(
            request,
            smtp_settings,
            testmail.Outcome(False, _("Enter a valid e-mail address.")),
            status=400,
        )
    try:
        ratelimit.hit("testmail", request.user)
    except ratelimit.RateLimited as error:
        return _testmail_response(
            request, smtp_settings, testmail.Outcome(False, str(error)), status=429
        )
    outcome = testmail.send(to, user=request.user)
    action = "test_email_sent" if outcome.ok else "test_email_failed"
    audit.log(smtp_settings, action, user=request.user, recipient=to, category=outcome.category)
    return _testmail_response(request, smtp_settings, outcome)


def _testmail_response(request, smtp_settings, outcome, *, status=200):
    if is_xhr(request):
        html = render_to_string(
            "wagtail_icarus_smtp/panels/testmail_result.html", {"outcome": outcome}, request
        )
        return JsonResponse({**outcome.as_dict(), "html": html}, status=status)
    if outcome.ok:
        messages.success(request, f"{outcome.message} {outcome.configuration_label}".strip())
    else:
        details = " ".join(
            part for part in (outcome.explanation, outcome.fix, outcome.configuration_label) if part
        )
        messages.error(request, f"{outcome.message} {details}".strip())
    return redirect(edit_url(smtp_settings))


# -- history -----------------------------------------------------------------------------


class HistoryFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        label=gettext_lazy("Status"), choices=states.Status.choices
    )
    category = django_filters.ChoiceFilter(
        label=gettext_lazy("Failure category"), choices=states.Category.choices
    )

    class Meta:
        model = SmtpStatusEvent
        fields = ["status", "category"]


#: History rows of the sending switch: Wagtail admin icons.
SWITCH_ICONS = {"sending_enabled": "mail", "sending_disabled": "cross"}


class StatusColumn(Column):
    cell_template_name = "wagtail_icarus_smtp/tables/status_cell.html"

    @property
    def media(self):
        return forms.Media(css={"all": ["wagtail_icarus_smtp/css/admin.css"]})

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        context["status"] = instance.kind or instance.status
        context["label"] = instance.get_kind_display() or instance.get_status_display()
        context["icon"] = SWITCH_ICONS.get(instance.kind) or report.ICONS[instance.status]
        return context


class HistoryView(ChangePermissionRequired, IndexView):
    """Every status event, newest first, filterable by state and failure category."""

    model = SmtpStatusEvent
    page_title = gettext_lazy("SMTP status history")
    breadcrumbs_label = gettext_lazy("History")
    verbose_name = gettext_lazy("status event")
    verbose_name_plural = gettext_lazy("status events")
    header_icon = "history"
    paginate_by = 25
    table_classname = "listing icarus-smtp-listing"  # scrolls sideways on a phone
    filterset_class = HistoryFilterSet
    index_url_name = "wagtail_icarus_smtp:history"
    index_results_url_name = "wagtail_icarus_smtp:history_results"

    def get_base_queryset(self):
        return super().get_base_queryset().select_related("triggered_by")

    def order_queryset(self, queryset):
        return queryset.order_by("-created_at", "-pk")

    def get_breadcrumbs_items(self):
        return [
            *super().get_breadcrumbs_items()[:-1],
            {
                "url": edit_url(SmtpSettings.load(request_or_site=self.request)),
                "label": SmtpSettings._meta.verbose_name,
            },
            {"url": "", "label": self.breadcrumbs_label},
        ]

    @cached_property
    def columns(self):
        return [
            Column(
                "created_at",
                label=_("Time"),
                accessor=lambda event: report.when(event.created_at),
            ),
            StatusColumn("status", label=_("Status")),
            Column("category", label=_("Failure"), accessor="get_category_display"),
            Column(
                "reply",
                label=_("Server reply"),
                accessor=lambda event: replies.split(event.reply)[0],
            ),
            Column(
                "detail",
                label=_("Technical details"),
                accessor=lambda event: replies.split(event.reply)[1],
            ),
            Column(
                "duration",
                label=_("Duration"),
                accessor=lambda event: (
                    f"{round(event.duration.total_seconds() * 1000)} ms"
                    if event.duration is not None
                    else ""
                ),
            ),
            UserColumn("triggered_by", label=_("Triggered by")),
        ]
