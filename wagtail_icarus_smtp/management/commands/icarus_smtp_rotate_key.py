from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from wagtail_icarus_smtp import audit
from wagtail_icarus_smtp.exceptions import PasswordUnreadable
from wagtail_icarus_smtp.models import SmtpLiveConfiguration, SmtpSettings
from wagtail_icarus_smtp.smtp import crypto

SECRET_COLUMNS = (
    "_password_encrypted",
    "_oauth_client_secret_encrypted",
    "_google_service_account_encrypted",
)


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored SMTP passwords (draft and live) with the first key of "
        "ICARUS_SMTP_ENCRYPTION_KEYS. Procedure: add the new key first in the list, "
        "keep the old one after it, run this command, then remove the old key."
    )

    def handle(self, *args, **options):
        rows = [*SmtpSettings.objects.all(), *SmtpLiveConfiguration.objects.all()]
        try:
            with transaction.atomic():
                for row in rows:
                    # the password, the OAuth client secret and the service account key
                    columns = [column for column in SECRET_COLUMNS if getattr(row, column)]
                    for column in columns:
                        setattr(row, column, crypto.rotate(getattr(row, column)))
                    if columns:
                        row.save(update_fields=columns)
                rows = [row for row in rows if any(getattr(row, c) for c in SECRET_COLUMNS)]
        except PasswordUnreadable as error:
            raise CommandError(
                "A stored password cannot be decrypted with the configured keys; nothing "
                "was changed. Keep the old key in ICARUS_SMTP_ENCRYPTION_KEYS (after the "
                "new one) until the rotation has run."
            ) from error
        for smtp_settings in SmtpSettings.objects.all():
            audit.log(smtp_settings, "key_rotated", rows=len(rows))
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {len(rows)} stored password(s)."))
