"""The panels of the settings page: status bar, fields, switch, test e-mail, history.

``settings_panels()`` is the page layout (``SmtpSettings.panels``). Each panel renders
its own template with Wagtail's own markup and classes, so the page looks native; the
shared ``wagtailsettings/edit.html`` is not overridden.
"""

from django import forms
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, Panel
from wagtail.admin.templatetags.wagtailadmin_tags import formattedfield
from wagtail.admin.widgets import SwitchInput

from .. import providers
from ..models.settings import GOOGLE, MICROSOFT365, PASSWORD
from . import report, testmail
from .deliverability import DeliverabilityPanel
from .stored import stored

#: Shown in the red frame of a required field that is still empty.
MISSING_MESSAGE = _("Required field — please fill in.")

#: The page's Stimulus controllers (registered with ``window.wagtail.app``); the
#: shared request helper comes with every admin page (``wagtail_hooks``).
MEDIA = forms.Media(
    css={"all": ["wagtail_icarus_smtp/css/admin.css"]},
    js=["wagtail_icarus_smtp/js/settings.js"],
)
STATUS_MEDIA = MEDIA + forms.Media(js=["wagtail_icarus_smtp/js/status.js"])

#: The controllers of the "Access data" panel (settings.js); its fields' events bubble
#: up to them.
ACCESS_DATA_ATTRS = {
    "data-controller": (
        "icarus-smtp-provider icarus-smtp-auth-method icarus-smtp-confirm icarus-smtp-required"
    ),
    "data-action": " ".join(
        [
            "change->icarus-smtp-provider#changed",
            "input->icarus-smtp-provider#typed",
            "change->icarus-smtp-auth-method#show",
            "input->icarus-smtp-confirm#update",
            "change->icarus-smtp-confirm#update",
            "input->icarus-smtp-required#check",
        ]
    ),
}


def status_context(smtp_settings):
    """What ``panels/status.html`` shows (the page and the status fragment)."""
    return {
        "report": report.build(smtp_settings),
        "status_url": reverse("wagtail_icarus_smtp:status_fragment"),
        "discard_url": reverse("wagtail_icarus_smtp:discard_draft"),
    }


def history_context(smtp_settings):
    """What ``panels/history.html`` shows (the page and the status fragment)."""
    return {
        "events": report.event_rows(smtp_settings.recent_events),
        "history_url": reverse("wagtail_icarus_smtp:history"),
    }


class StatusPanel(Panel):
    """The status bar: state, explanation and fix, last test, sending on or off.

    Its controller (``status.js``) asks the status fragment while a test runs and
    swaps the bar's parts in place.
    """

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_icarus_smtp/panels/status.html"

        @property
        def media(self):
            return STATUS_MEDIA

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            if self.instance.pk:
                context.update(status_context(stored(self)))
            return context


class HistoryPanel(Panel):
    """The last status events, with a link to the full history."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_icarus_smtp/panels/history.html"

        @property
        def media(self):
            return STATUS_MEDIA

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            if self.instance.pk:
                context.update(history_context(stored(self)))
            return context


class RequiredFieldPanel(FieldPanel):
    """A field that a complete configuration needs.

    Marked with "*" and, while empty, framed red with a short message — on every page
    load, not only after a failed submit. Display only: the form field itself stays
    optional, so a partial form can still be saved ("Setup started").
    """

    class BoundPanel(FieldPanel.BoundPanel):
        def is_required(self):
            return True

        @property
        def is_missing(self):
            missing_fields = getattr(self.form, "missing_fields", None)
            return (
                missing_fields is not None
                and not self.read_only
                and not self.bound_field.errors
                and self.field_name in missing_fields()
            )

        def render_html(self, parent_context=None):
            if not self.is_missing:
                return super().render_html(parent_context)
            context = self.get_context_data(parent_context)
            described_by = [context["error_message_id"]]
            if self.help_text:
                described_by.insert(0, context["help_text_id"])
            rendered_field = self.bound_field.as_widget(
                attrs={"aria-invalid": "true", "aria-describedby": " ".join(described_by)}
            )
            field_context = formattedfield(
                field=self.bound_field,
                rendered_field=rendered_field,
                show_label=False,
                help_text=context["help_text"],
                help_text_id=context["help_text_id"],
                error_message_id=context["error_message_id"],
                wrapper_id=context["wrapper_id"],
                show_add_comment_button=False,
            )
            field_context.update(has_errors=True, errors=[MISSING_MESSAGE])
            return render_to_string("wagtailadmin/shared/formatted_field.html", field_context)


class MethodFieldMixin:
    """A field that belongs to some sign-in methods only (``methods``): its wrapper
    (label and field) names them, and the page's JavaScript shows it for those. The
    server already hides it when another method is chosen, so the form is right
    before any script runs."""

    def __init__(self, *args, methods=(), **kwargs):
        self.methods = tuple(methods)
        super().__init__(*args, **kwargs)

    def clone_kwargs(self):
        kwargs = super().clone_kwargs()
        kwargs["methods"] = self.methods
        return kwargs

    class BoundPanel:
        def chosen_method(self):
            field = self.form["auth_method"] if "auth_method" in self.form.fields else None
            return (field.value() if field is not None else "") or "password"

        @property
        def attrs(self):
            """On the child's wrapper (label and field): which methods show it."""
            attrs = {**self.panel.attrs, "data-icarus-auth-method": " ".join(self.panel.methods)}
            if self.chosen_method() not in self.panel.methods:
                attrs["hidden"] = "hidden"
            return attrs


class MethodFieldPanel(MethodFieldMixin, FieldPanel):
    class BoundPanel(MethodFieldMixin.BoundPanel, FieldPanel.BoundPanel):
        pass


class MethodRequiredFieldPanel(MethodFieldMixin, RequiredFieldPanel):
    class BoundPanel(MethodFieldMixin.BoundPanel, RequiredFieldPanel.BoundPanel):
        pass


class ProviderPanel(FieldPanel):
    """The provider choice; its presets and hints go to the page as JSON for the
    ``icarus-smtp-provider`` controller."""

    class BoundPanel(FieldPanel.BoundPanel):
        def render_html(self, parent_context=None):
            field = super().render_html(parent_context)
            current = providers.BY_KEY.get(self.bound_field.value() or "")
            extra = render_to_string(
                "wagtail_icarus_smtp/panels/provider_hint.html",
                {
                    "providers": providers.as_json_data(),
                    "hint": current.hint if current else "",
                },
            )
            return mark_safe(field + extra)  # noqa: S308 (both parts are rendered templates)


class SendingSwitchPanel(FieldPanel):
    """ "SMTP mail sending" as an on/off switch, with the seed's wording and warning."""

    def __init__(self, field_name, **kwargs):
        kwargs.setdefault("widget", SwitchInput)
        super().__init__(field_name, **kwargs)

    class BoundPanel(FieldPanel.BoundPanel):
        def render_html(self, parent_context=None):
            return render_to_string(
                "wagtail_icarus_smtp/panels/switch_state.html",
                {
                    "field": super().render_html(parent_context),
                    "enabled": bool(self.bound_field.value()),
                },
            )


class TestMailPanel(Panel):
    """Send a test message through the live configuration and show the transcript."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_icarus_smtp/panels/testmail.html"

        @property
        def media(self):
            return MEDIA + forms.Media(js=["wagtail_icarus_smtp/js/testmail.js"])

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            user = getattr(self.request, "user", None)
            context["default_to"] = getattr(user, "email", "")
            context["url"] = reverse("wagtail_icarus_smtp:testmail")
            saved = stored(self) if self.instance.pk else None
            context["unavailable"] = testmail.unavailable_reason(saved)
            return context


def settings_panels():
    """The layout of the settings page, top to bottom."""
    return [
        StatusPanel(heading=_("Status")),
        MultiFieldPanel(
            [
                ProviderPanel("provider"),
                FieldPanel("from_name"),
                RequiredFieldPanel("email"),
                FieldPanel("auth_method", widget=forms.RadioSelect),
                MethodRequiredFieldPanel("password", methods=[PASSWORD]),
                MethodRequiredFieldPanel("oauth_tenant_id", methods=[MICROSOFT365]),
                MethodRequiredFieldPanel("oauth_client_id", methods=[MICROSOFT365]),
                MethodRequiredFieldPanel("oauth_client_secret", methods=[MICROSOFT365]),
                MethodFieldPanel("oauth_secret_expires", methods=[MICROSOFT365]),
                MethodRequiredFieldPanel("google_service_account", methods=[GOOGLE]),
                RequiredFieldPanel("host"),
                RequiredFieldPanel("port"),
                FieldRowPanel(
                    [FieldPanel("send_limit"), FieldPanel("send_limit_period")],
                    heading=_("Provider's send limit"),
                ),
                FieldPanel("confirm_password"),
            ],
            heading=_("Access data"),
            attrs=ACCESS_DATA_ATTRS,
        ),
        SendingSwitchPanel("enabled", help_text=_("Switch on once the setup is complete.")),
        TestMailPanel(heading=_("Test e-mail")),
        DeliverabilityPanel(heading=_("Deliverability")),
        HistoryPanel(heading=_("History")),
    ]
