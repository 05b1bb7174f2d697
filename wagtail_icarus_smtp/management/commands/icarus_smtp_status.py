from django.core.management.base import BaseCommand

from wagtail_icarus_smtp import status
from wagtail_icarus_smtp.admin import report
from wagtail_icarus_smtp.models import SmtpSettings


class Command(BaseCommand):
    help = (
        "Show the SMTP status and the latest history. "
        "Exit code 0 only when the setup is complete and sending is enabled."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=5, help="history rows to show")

    def handle(self, *args, events, **options):
        state = report.build(SmtpSettings.load(), events=events)
        self.stdout.write(f"Status: {state['status']} ({state['status_label']})")
        self.stdout.write(f"Sending: {'enabled' if state['enabled'] else 'disabled'}")
        if state["category"]:
            self.stdout.write(f"Failure: {state['category']} — {state['explanation']}")
            self.stdout.write(f"Fix: {state['fix']}")
            if state["reply"]:
                self.stdout.write(f"Server reply: {state['reply']}")
        for note in (state["live_note"], state["stale_hint"]):
            if note:
                self.stdout.write(note)
        if state["missing_fields"]:
            self.stdout.write(f"Missing: {', '.join(state['missing_fields'])}")
        for row in state["events"]:
            line = f"  {row['time'][:19]}  {row['status']:<15} {row['category']:<22} {row['reply']}"
            self.stdout.write(line.rstrip())
        if not (state["status"] == status.COMPLETE and state["enabled"]):
            raise SystemExit(1)
