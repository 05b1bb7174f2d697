"""The "Deliverability" panel of the settings page: one line per check, the records to
add ready to copy, when it was checked, and "Check again".

It shows what is stored (``DeliverabilityReport``); it never asks the DNS itself.
"""

from django import forms
from django.core.exceptions import ObjectDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from wagtail.admin.panels import Panel

from . import checks, texts

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
        "rows": [row for row in rows if row["check"] != checks.REPLY_TO],
        "info_rows": [row for row in rows if row["check"] == checks.REPLY_TO],
    }


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
                data["body"] = render_body(self.instance, self.request)
                data["url"] = reverse("wagtail_icarus_smtp:deliverability")
            return data
