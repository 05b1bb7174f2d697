from django.core.management.base import BaseCommand, CommandError

from wagtail_icarus_smtp import status
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.setup import validation


class Command(BaseCommand):
    help = "Run the connection test for the saved settings now, without a task worker."

    def handle(self, *args, **options):
        smtp_settings = SmtpSettings.load()
        missing = smtp_settings.missing_fields()
        if missing:
            raise CommandError(f"The settings are incomplete; missing: {', '.join(missing)}.")
        smtp_settings.record(status.RUNNING)
        event = validation.validate(smtp_settings.pk, smtp_settings.version)
        if event is None:
            raise CommandError("The settings changed while testing; run the command again.")
        label = status.Status(event.status).label
        if event.status != status.COMPLETE:
            help_text = status.category_help(event.category)
            raise CommandError(f"{label}: {event.category} — {help_text[1]} {event.reply}".strip())
        self.stdout.write(self.style.SUCCESS(f"{label}: the connection works and is now live."))
