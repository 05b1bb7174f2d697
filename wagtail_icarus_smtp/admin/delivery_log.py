"""The delivery log in the Wagtail admin (Reports → "Delivery log"): every message with
its attempts and outcome; release, resend and discard (confirmed, audit-logged).

Only users who may change the SMTP settings see or touch any of it.
"""

import django_filters
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn, TitleColumn
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports import ReportView

from .. import audit, outbox, queue
from ..models import OutboxMessage, SmtpLiveConfiguration, SmtpSettings
from ..models.outbox import DEFERRED, FAILED, HELD, QUEUED, SENT
from . import ratelimit
from .permissions import ChangePermissionRequired, user_can_change

NAMESPACE = "wagtail_icarus_smtp_outbox"
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class DeliveryLogFilterSet(WagtailFilterSet):
    status = django_filters.MultipleChoiceFilter(
        label=_("Status"), choices=OutboxMessage.Status.choices
    )
    created_at = django_filters.DateFromToRangeFilter(
        label=_("Accepted"), widget=DateRangePickerWidget
    )

    class Meta:
        model = OutboxMessage
        fields = ["status", "created_at"]


class ChoiceColumn(Column):
    """A field with choices, shown by its label (translated), not its machine value."""

    def get_value(self, instance):
        return getattr(instance, f"get_{self.accessor}_display")()


class DeliveryLogView(ChangePermissionRequired, ReportView):
    page_title = _("Delivery log")
    header_icon = "mail"
    index_url_name = f"{NAMESPACE}:index"
    index_results_url_name = f"{NAMESPACE}:index_results"
    filterset_class = DeliveryLogFilterSet
    is_searchable = True
    search_backend_name = None  # plain ORM search over the fields below
    search_fields = ["recipient_list", "subject"]
    columns = [
        TitleColumn(
            "subject",
            label=_("Subject"),
            url_name=f"{NAMESPACE}:detail",
        ),
        Column("recipient_list", label=_("Recipients")),
        ChoiceColumn("status", label=_("Status")),
        DateColumn("created_at", label=_("Accepted")),
        Column("attempts", label=_("Attempts")),
        ChoiceColumn("last_category", label=_("Failure category")),
        Column("last_reply", label=_("Server reply")),
    ]
    list_export = [
        "created_at",
        "status",
        "subject",
        "recipient_list",
        "message_id",
        "attempts",
        "sent_at",
        "last_category",
        "last_reply",
    ]
    export_headings = {
        "created_at": _("Accepted"),
        "status": _("Status"),
        "subject": _("Subject"),
        "recipient_list": _("Recipients"),
        "message_id": _("Message-ID"),
        "attempts": _("Attempts"),
        "sent_at": _("Sent"),
        "last_category": _("Failure category"),
        "last_reply": _("Server reply"),
    }

    def get_queryset(self):
        return OutboxMessage.objects.defer("mime").order_by("-created_at", "-pk")

    def get_filtered_queryset(self):
        return self.search_queryset(super().get_filtered_queryset())

    def get_filename(self):
        return "delivery-log"

    def preprocess_field_value(self, field, value, export_format):
        """Subjects, recipients and server replies are outside data: a cell that a
        spreadsheet would run as a formula gets a leading ``'`` (CSV and XLSX)."""
        value = super().preprocess_field_value(field, value, export_format)
        if isinstance(value, str) and value.startswith(FORMULA_START):
            return "'" + value
        return value


#: action -> (statuses it applies to, outbox function, audit action, success text)
ACTIONS = {
    "release": (
        (HELD, DEFERRED),
        outbox.release,
        "outbox_released",
        _("The message will be sent now."),
    ),
    "resend": (
        (SENT, FAILED),
        outbox.resend,
        "outbox_resent",
        _("The message will be sent again."),
    ),
    "discard": (
        (QUEUED, HELD, DEFERRED),
        None,
        "outbox_discarded",
        _("The message was discarded and will not be sent."),
    ),
}


class MessageView(ChangePermissionRequired, WagtailAdminTemplateMixin, TemplateView):
    """One message of the delivery log (404 when it does not exist)."""

    header_icon = "mail"

    @cached_property
    def message(self):
        return get_object_or_404(OutboxMessage.objects.defer("mime"), pk=self.kwargs["pk"])

    def get_page_subtitle(self):
        return self.message.subject

    def get_breadcrumbs_items(self):
        """Home > Delivery log > the message: the listing stays one click away."""
        return [
            *self.breadcrumbs_items,
            {"url": reverse(f"{NAMESPACE}:index"), "label": DeliveryLogView.page_title},
            {
                "url": reverse(f"{NAMESPACE}:detail", args=[self.message.pk]),
                "label": self.message.subject or "—",
            },
        ]


class MessageDetailView(MessageView):
    template_name = "wagtail_icarus_smtp/outbox/detail.html"
    page_title = _("Delivery log")

    def get_context_data(self, **kwargs):
        message = self.message
        context = super().get_context_data(**kwargs)
        context.update(
            message=message,
            attempts=message.delivery_attempts.all(),
            recipients=[
                (address, _status_label(state.get("status")), state.get("reply", ""))
                for address, state in (
                    (address, message.recipient_status.get(address, {}))
                    for address in message.recipients
                )
            ],
            actions=[
                (name, reverse(f"{NAMESPACE}:{name}", args=[message.pk]))
                for name, (statuses, *_rest) in ACTIONS.items()
                if message.status in statuses and not (name == "resend" and message.body_purged_at)
            ],
            index_url=reverse(f"{NAMESPACE}:index"),
        )
        return context

    def get_breadcrumbs_items(self):
        *path, last = super().get_breadcrumbs_items()
        return [*path, {**last, "url": ""}]  # the current page is not a link


def _status_label(value):
    """A recipient's outcome in words ("Sent"), or "" while none is recorded."""
    return OutboxMessage.Status(value).label if value in OutboxMessage.Status.values else ""


class MessageActionView(MessageView):
    """POST performs the action; "discard" and "resend" ask for confirmation first (GET).

    A resend goes out through the configuration that is live now, which may not be the
    one that sent the message: the confirmation names that server, and the POST must
    name it too (``server``), so a message is never re-sent through a server the editor
    did not see. Release and resend are rate-limited per user ("outbox").
    """

    action = None
    CONFIRM = {
        "discard": ("wagtail_icarus_smtp/outbox/confirm_discard.html", _("Discard message")),
        "resend": ("wagtail_icarus_smtp/outbox/confirm_resend.html", _("Send message again")),
    }

    def get_template_names(self):
        return [self.CONFIRM[self.action][0]]

    def get_page_title(self):
        return self.CONFIRM[self.action][1]

    def get(self, request, *args, **kwargs):
        if self.action not in self.CONFIRM:
            return redirect(f"{NAMESPACE}:detail", self.kwargs["pk"])
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["message"] = self.message
        context["detail_url"] = reverse(f"{NAMESPACE}:detail", args=[self.kwargs["pk"]])
        if self.action == "resend":
            context.update(self._resend_context())
        return context

    def _resend_context(self):
        live = SmtpLiveConfiguration.objects.first()
        server = outbox.via(live.email, live.host, live.port) if live else ""
        sent_via = self.message.sent_via
        older = live is not None and self.message.created_at < live.promoted_at
        return {
            "server": server,
            "sent_via": sent_via,
            # Sent through another server; or never sent, and the settings changed since.
            "server_changed": bool(sent_via and sent_via != server) or (older and not sent_via),
        }

    def get_breadcrumbs_items(self):
        return [*super().get_breadcrumbs_items(), {"url": "", "label": self.get_page_title()}]

    def post(self, request, pk):
        message = get_object_or_404(OutboxMessage.objects.defer("mime"), pk=pk)
        refusal = self._refusal(request)
        if refusal:
            messages.error(request, refusal)
            return redirect(f"{NAMESPACE}:detail", pk)
        statuses, function, audit_action, success = ACTIONS[self.action]
        rows = OutboxMessage.objects.filter(pk=pk, status__in=statuses)
        if self.action == "discard":
            reason = gettext("Discarded by %(user)s") % {"user": request.user.get_username()}
            done = outbox.discard(rows, reason=reason)
        else:
            done = function(rows)
        if not done:
            messages.error(request, gettext("The message has changed meanwhile; nothing done."))
            return redirect(f"{NAMESPACE}:detail", pk)
        extra = {"server": request.POST["server"]} if self.action == "resend" else {}
        audit.log(
            SmtpSettings.load(),
            audit_action,
            user=request.user,
            message_id=message.message_id,
            status=message.status,
            **extra,
        )
        if self.action != "discard":
            queue.enqueue_delivery()
        messages.success(request, success)
        return redirect(f"{NAMESPACE}:detail", pk)

    def _refusal(self, request):
        """Why the action is not done now (translated), or ``""``."""
        if self.action == "resend":
            server = self._resend_context()["server"]
            if not server:
                return gettext("There is no working mail server to send the message through.")
            if request.POST.get("server") != server:
                return gettext(
                    "The mail server has changed since you confirmed; nothing was sent. "
                    "Check the server named on the confirmation page and confirm again."
                )
        if self.action in ("release", "resend"):
            try:
                ratelimit.hit("outbox", request.user)
            except ratelimit.RateLimited as error:
                return str(error)
        return ""


class DeliveryLogMenuItem(MenuItem):
    def is_shown(self, request):
        return user_can_change(request.user)


def urls():
    return [
        path("", DeliveryLogView.as_view(), name="index"),
        path("results/", DeliveryLogView.as_view(results_only=True), name="index_results"),
        path("<int:pk>/", MessageDetailView.as_view(), name="detail"),
        *(
            path(f"<int:pk>/{name}/", MessageActionView.as_view(action=name), name=name)
            for name in ACTIONS
        ),
    ]
