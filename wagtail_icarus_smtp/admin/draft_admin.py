"""After saving the settings: a message that tells the truth, and a way back from a
draft that failed.

Wagtail's settings view says "SMTP settings updated." after every save — also above a
draft whose connection test is only starting, or has already failed. The
``after_edit_setting`` hook replaces that message with what happened (``saved_message``).

A failed draft is not in use: the editor can discard it and return to the settings
that are (``DiscardDraftView``: a confirmation page, then a POST).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from .. import audit, status
from ..models import SmtpLiveConfiguration, SmtpSettings
from .permissions import user_can_change
from .views import edit_url


def saved_message(smtp_settings):
    """``(level, text)`` for the state right after a save."""
    value = smtp_settings.status
    if value == status.RUNNING:
        return messages.SUCCESS, gettext("Saved: the connection is being tested.")
    if value == status.FAILED:
        if smtp_settings.live_differs:
            return messages.WARNING, gettext(
                "Saved as a draft, but the connection test failed: this draft is not in "
                "use. Mail is still sent with the last working settings."
            )
        return messages.WARNING, gettext(
            "Saved, but the connection test failed: these settings are not in use."
        )
    if value == status.STARTED or value == status.NOT_CONFIGURED:
        return messages.INFO, gettext("Saved. The settings are not complete yet and not in use.")
    return messages.SUCCESS, gettext("Saved.")


#: Wagtail's own success message (translated by Wagtail's catalogue, not ours).
WAGTAIL_UPDATED = "%(setting_type)s updated."


def replace_saved_message(request, smtp_settings):
    """Swap Wagtail's "SMTP settings updated." for ``saved_message`` (other messages
    stay). Reading the messages marks them used; the ones kept are added again."""
    default = capfirst(gettext(WAGTAIL_UPDATED) % {"setting_type": SmtpSettings._meta.verbose_name})
    storage = messages.get_messages(request)
    kept = [message for message in storage if str(message.message).strip() != default]
    for message in kept:
        messages.add_message(request, message.level, message.message, message.extra_tags)
    level, text = saved_message(SmtpSettings.objects.get(pk=smtp_settings.pk))
    messages.add_message(request, level, text)


def discard_draft(smtp_settings, user=None):
    """Put the live configuration back into the form; the draft is gone.

    Returns ``False`` when there is nothing to discard (no live configuration, or it
    is the draft already). The result is a new version, equal to the live one.
    """
    with transaction.atomic():
        locked = SmtpSettings.objects.select_for_update().get(pk=smtp_settings.pk)
        live = locked.live_config
        if live is None or live.version == locked.version:
            return False
        locked.email, locked.host, locked.port = live.email, live.host, live.port
        locked._password_encrypted = live._password_encrypted
        locked.version += 1
        locked.save()
        SmtpLiveConfiguration.objects.filter(pk=live.pk).update(version=locked.version)
        locked.record(status.COMPLETE, user=user)
        audit.log(locked, "draft_discarded", user=user, version=locked.version)
    return True


class DiscardDraftView(WagtailAdminTemplateMixin, TemplateView):
    """GET: what the form goes back to; POST: discard the draft."""

    template_name = "wagtail_icarus_smtp/draft/confirm_discard.html"
    page_title = _("Discard draft")
    header_icon = "mail"

    def dispatch(self, request, *args, **kwargs):
        if not user_can_change(request.user):
            raise PermissionDenied
        self.smtp_settings = SmtpSettings.load(request_or_site=request)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["live"] = self.smtp_settings.live_config
        context["draft_differs"] = self.smtp_settings.live_differs
        context["edit_url"] = edit_url(self.smtp_settings)
        return context

    def post(self, request):
        if discard_draft(self.smtp_settings, user=request.user):
            messages.success(
                request,
                gettext("The draft was discarded: the form shows the settings in use again."),
            )
        else:
            messages.error(request, gettext("There is no draft to discard; nothing was changed."))
        return redirect(edit_url(self.smtp_settings))
