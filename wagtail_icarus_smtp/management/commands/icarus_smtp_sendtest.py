from django.core.mail import EmailMessage
from django.core.management.base import BaseCommand, CommandError

from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models.outbox import SENT
from wagtail_icarus_smtp.setup import live


class Command(BaseCommand):
    help = (
        "Send a test e-mail through the live SMTP configuration, via the outbox, "
        "and report what became of it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="recipient address")

    def handle(self, *args, to, **options):
        message = EmailMessage(
            subject="SMTP-Test / SMTP test",
            body=(
                "Diese Test-E-Mail wurde über die SMTP-Einstellungen Ihrer Website versendet.\n"
                "This test e-mail was sent through your website's SMTP settings.\n"
            ),
            to=[to],
        )
        sending = live.load()
        if sending.mailbox is None:  # a test message is not kept for later
            raise CommandError(
                "Nothing was sent: sending is disabled or no working configuration exists "
                f"({sending.reason}; see manage.py icarus_smtp_status)."
            )
        [row] = outbox.accept([EmailBackend().envelope(message)], held=False)
        outbox.deliver(ids=[row.pk], sending=sending)
        row.refresh_from_db()
        if row.status != SENT:
            raise CommandError(
                f"Sending failed ({row.status}): {row.last_category} {row.last_reply}".strip()
            )
        self.stdout.write(self.style.SUCCESS(f"Test e-mail sent to {to}."))
