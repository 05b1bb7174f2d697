from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from wagtail_icarus_smtp import audit
from wagtail_icarus_smtp.exceptions import PasswordUnreadable
from wagtail_icarus_smtp.models import SmtpLiveConfiguration, SmtpSettings
from wagtail_icarus_smtp.smtp import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored SMTP passwords (draft and live) with the first key of "
        "ICARUS_SMTP_ENCRYPTION_KEYS. Procedure: add the new key first in the list, "
        "keep the old one after it, run this command, then remove the old key."
    )

    def handle(self, *args, **options):
        rows = [
            *SmtpSettings.objects.exclude(_password_encrypted=""),
            *SmtpLiveConfiguration.objects.all(),
        ]
        try:
            with transaction.atomic():
                for row in rows:
                    row._password_encrypted = crypto.rotate(row._password_encrypted)
                    row.save(update_fields=["_password_encrypted"])
        except PasswordUnreadable as error:
            raise CommandError(
                "A stored password cannot be decrypted with the configured keys; nothing "
                "was changed. Keep the old key in ICARUS_SMTP_ENCRYPTION_KEYS (after the "
                "new one) until the rotation has run."
            ) from error
        for smtp_settings in SmtpSettings.objects.all():
            audit.log(smtp_settings, "key_rotated", rows=len(rows))
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {len(rows)} stored password(s)."))
