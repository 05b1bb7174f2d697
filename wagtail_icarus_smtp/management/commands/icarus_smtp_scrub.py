"""Make a copy of a production database safe: no credentials, and no customer mail
(held password-reset links would otherwise go out once staging is configured)."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from wagtail_icarus_smtp import audit
from wagtail_icarus_smtp.models import OutboxMessage, SmtpLiveConfiguration, SmtpSettings
from wagtail_icarus_smtp.models.outbox import FAILED, WAITING


class Command(BaseCommand):
    help = (
        "Remove the stored SMTP credentials and switch sending off, discard the mail that "
        "waits to be sent and delete all stored message bodies — e.g. after copying a "
        "production database to a staging system. The other settings are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")
        parser.add_argument(
            "--keep-outbox",
            action="store_true",
            help="only remove the credentials; keep waiting mail and message bodies",
        )

    def handle(self, *args, interactive, keep_outbox, **options):
        question = (
            "Remove the stored SMTP password? [y/N] "
            if keep_outbox
            else "Remove the stored SMTP password, discard waiting mail and delete all "
            "message bodies? [y/N] "
        )
        if interactive and input(question).lower() != "y":
            self.stdout.write("Nothing changed.")
            return
        with transaction.atomic():
            counts = {} if keep_outbox else _empty_outbox()
            live_rows = SmtpLiveConfiguration.objects.all().delete()[0]
            for smtp_settings in SmtpSettings.objects.select_for_update():
                smtp_settings._password_encrypted = ""
                smtp_settings.enabled = False
                smtp_settings.version += 1
                smtp_settings.save()
                smtp_settings.record(smtp_settings.status)
                audit.log(smtp_settings, "scrubbed", live_configurations=live_rows, **counts)
        self.stdout.write(self.style.SUCCESS("Stored SMTP credentials removed; sending is off."))
        if counts:
            self.stdout.write(
                f"Discarded {counts['discarded']} waiting message(s); "
                f"deleted {counts['bodies_deleted']} stored message bodies."
            )


def _empty_outbox():
    """Waiting rows fail with a reason, and every stored body goes (sent and failed too)."""
    now = timezone.now()
    reason = gettext("Discarded by %(user)s") % {"user": "icarus_smtp_scrub"}
    discarded = OutboxMessage.objects.filter(status__in=WAITING).update(
        status=FAILED,
        lease_token="",
        lease_expires_at=None,
        last_category="",
        last_reply=reason[:500],
    )
    bodies = OutboxMessage.objects.filter(mime__isnull=False).update(mime=None, body_purged_at=now)
    return {"discarded": discarded, "bodies_deleted": bodies}
