from django.core.management.base import BaseCommand
from django.db import transaction

from wagtail_icarus_smtp import audit
from wagtail_icarus_smtp.models import SmtpLiveConfiguration, SmtpSettings


class Command(BaseCommand):
    help = (
        "Remove the stored SMTP credentials and switch sending off — e.g. after copying a "
        "production database to a staging system. The other settings are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args, interactive, **options):
        if interactive and input("Remove the stored SMTP password? [y/N] ").lower() != "y":
            self.stdout.write("Nothing changed.")
            return
        with transaction.atomic():
            live_rows = SmtpLiveConfiguration.objects.all().delete()[0]
            for smtp_settings in SmtpSettings.objects.select_for_update():
                smtp_settings._password_encrypted = ""
                smtp_settings.enabled = False
                smtp_settings.version += 1
                smtp_settings.save()
                smtp_settings.record(smtp_settings.status)
                audit.log(smtp_settings, "scrubbed", live_configurations=live_rows)
        self.stdout.write(self.style.SUCCESS("Stored SMTP credentials removed; sending is off."))
