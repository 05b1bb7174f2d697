from django.core.management.base import BaseCommand

from wagtail_icarus_smtp import outbox, queue
from wagtail_icarus_smtp.models import OutboxMessage
from wagtail_icarus_smtp.models.outbox import FAILED


class Command(BaseCommand):
    help = (
        "Show the outbox: messages by status and the oldest waiting one. "
        "Optionally release held/deferred mail, retry failed mail or delete old bodies."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--release", action="store_true", help="send held and deferred messages now"
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="queue failed messages (whose body is still stored) again",
        )
        parser.add_argument(
            "--purge-bodies",
            action="store_true",
            help="delete bodies and old rows after the retention periods",
        )

    def handle(self, *args, release, retry_failed, purge_bodies, **options):
        everything = OutboxMessage.objects.all()
        if release:
            count = outbox.release(everything)
            self.stdout.write(f"Released {count} message(s).")
        if retry_failed:
            count = outbox.resend(everything.filter(status=FAILED))
            self.stdout.write(f"Queued {count} failed message(s) again.")
        if release or retry_failed:
            queue.enqueue_delivery()
        if purge_bodies:
            bodies, rows = outbox.purge()
            self.stdout.write(f"Deleted {bodies} message bodies and {rows} old log rows.")
        self._show(outbox.summary())

    def _show(self, summary):
        for value, count in summary["counts"].items():
            self.stdout.write(f"{value:<9} {count}")
        age = summary["oldest_age_seconds"]
        if age is None:
            self.stdout.write("Nothing is waiting.")
        else:
            self.stdout.write(
                f"Oldest waiting message: {summary['oldest_waiting']} ({_age(age)} ago)"
            )


def _age(seconds):
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
