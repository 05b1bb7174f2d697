from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WagtailIcarusSmtpConfig(AppConfig):
    name = "wagtail_icarus_smtp"
    label = "wagtail_icarus_smtp"
    verbose_name = _("SMTP settings")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The only imports inside a function in the package: the rooms need the app
        # registry, and ``ready`` wires the upward steps of the data path (signals).
        from wagtail.admin.panels import ObjectList

        from . import checks, conf, queue  # noqa: F401 (checks registers the system checks)
        from .admin.forms import SmtpSettingsForm
        from .admin.panels import settings_panels
        from .deliverability import run as deliverability
        from .models import SmtpSettings
        from .outbox import alerts, delivery, notices

        conf.connect_signals()
        delivery.connect()
        notices.connect()
        alerts.connect()
        deliverability.connect()
        # The settings page's panels and form live in the admin room; the model stays
        # free of admin imports (as Wagtail attaches edit handlers to page models).
        SmtpSettings.edit_handler = ObjectList(settings_panels(), base_form_class=SmtpSettingsForm)
        if self.apps.is_installed("django_q"):
            post_migrate.connect(
                queue.ensure_health_schedule, sender=self, dispatch_uid="wagtail_icarus_smtp.health"
            )
