"""The panel on the Wagtail home page: current state and a link to the settings."""

from django import forms
from wagtail.admin.ui.components import Component

from ..models import SmtpSettings
from . import report
from .views import edit_url


class SmtpStatusDashboardPanel(Component):
    name = "icarus_smtp_status"
    template_name = "wagtail_icarus_smtp/home/status_panel.html"
    order = 90

    @property
    def media(self):
        return forms.Media(css={"all": ["wagtail_icarus_smtp/css/admin.css"]})

    def get_context_data(self, parent_context):
        request = parent_context["request"]
        smtp_settings = SmtpSettings.load(request_or_site=request)
        return {"report": report.build(smtp_settings, events=0), "url": edit_url(smtp_settings)}
