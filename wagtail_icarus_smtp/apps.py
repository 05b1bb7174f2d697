from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailIcarusSmtpConfig(AppConfig):
    name = "wagtail_icarus_smtp"
    label = "wagtail_icarus_smtp"
    verbose_name = _("SMTP settings")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            conf,
            health,
        )

        conf.connect_signals()
        health.connect_signals(self)
