"""The status panel shown above the form on the settings page."""

from django import forms
from django.urls import reverse
from wagtail.admin.panels import Panel

from . import report


class StatusPanel(Panel):
    """Shows the state, its explanation and fix, and the recent history."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_icarus_smtp/panels/status.html"

        @property
        def media(self):
            return forms.Media(js=["wagtail_icarus_smtp/js/status.js"])

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            if self.instance.pk:
                context["report"] = report.build(self.instance)
                context["status_url"] = reverse("wagtail_icarus_smtp:status")
            return context
