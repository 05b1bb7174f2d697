from django.core.mail import EmailMessage
from django.core.management.base import BaseCommand, CommandError

from wagtail_icarus_smtp.backends import EmailBackend


class Command(BaseCommand):
    help = "Send a test e-mail through the live SMTP configuration."

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
        backend = EmailBackend()
        try:
            sent = backend.send_messages([message])
        except OSError as error:
            raise CommandError(f"Sending failed: {type(error).__name__}: {error}") from error
        if not sent:
            raise CommandError(
                "Nothing was sent: sending is disabled or no working configuration exists "
                "(see manage.py icarus_smtp_status)."
            )
        self.stdout.write(self.style.SUCCESS(f"Test e-mail sent to {to}."))
