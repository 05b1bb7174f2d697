"""Enqueue and schedule django-q2 tasks by their dotted name.

Domain code imports this module, never ``tasks``: the task bodies import the domain,
so the names here are plain strings (they are stored in django-q2's Task and Schedule
rows and must not change).
"""

import contextlib

from django.db import DEFAULT_DB_ALIAS, transaction
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from . import conf

GROUP = "wagtail_icarus_smtp"
VALIDATE = "wagtail_icarus_smtp.tasks.validate_settings"
DELIVER = "wagtail_icarus_smtp.tasks.deliver_outbox"
HEALTH_CHECK = "wagtail_icarus_smtp.tasks.health_check"
ALERT_WEBHOOK = "wagtail_icarus_smtp.tasks.post_alert_webhook"
DELIVERABILITY = "wagtail_icarus_smtp.tasks.check_deliverability"

#: Names of our django-q2 schedules.
RETRY_SCHEDULE = "wagtail_icarus_smtp: retry deferred mail"
HEALTH_SCHEDULE = "wagtail_icarus_smtp: health check"


def after_commit(name, *args):
    """Queue task ``name`` with ``args`` once the current transaction has committed."""
    transaction.on_commit(lambda: enqueue_now(name, *args))


def queuing():
    """The transaction to queue tasks in (with what goes with them).

    Outside one, django-q2's ORM broker closes the database connection before it
    queues (``close_old_connections``), and whatever the request runs next has to open
    a new one (~2 ms, more when SQLite checkpoints its log on the close). Where
    django-q2 runs tasks at once (``sync``), a task must not run inside a transaction:
    then there is none.
    """
    if Conf.SYNC:
        return contextlib.nullcontext()
    return transaction.atomic(using=Conf.ORM or DEFAULT_DB_ALIAS, savepoint=False)


def enqueue_now(name, *args):
    """Queue task ``name`` now (the caller has committed already, or is ``queuing``)."""
    with queuing():
        async_task(name, *args, group=GROUP)


def enqueue_delivery():
    """Queue one drain of the outbox (after the current transaction commits)."""
    after_commit(DELIVER)


def enqueue_deliverability(*, force):
    """Queue the deliverability check of the live mailbox's domain (after commit);
    ``force``: ask the DNS even when the stored result is still fresh."""
    after_commit(DELIVERABILITY, force)


def schedule_delivery(when):
    """Run a drain at ``when`` (one schedule row, moved earlier when needed)."""
    current = Schedule.objects.filter(name=RETRY_SCHEDULE).first()
    if current is None:
        Schedule.objects.create(
            name=RETRY_SCHEDULE, func=DELIVER, schedule_type=Schedule.ONCE, next_run=when
        )
    elif current.next_run is None or when < current.next_run:
        Schedule.objects.filter(pk=current.pk).update(next_run=when, repeats=-1)


def ensure_health_schedule(**kwargs):
    """Create or update the django-q2 schedule of the health check (idempotent)."""
    with transaction.atomic():
        found = Schedule.objects.filter(name=HEALTH_SCHEDULE).order_by("pk")
        values = {
            "func": HEALTH_CHECK,
            "schedule_type": Schedule.MINUTES,
            "minutes": conf.get("HEALTH_CHECK_INTERVAL"),
            "repeats": -1,
        }
        first = found.first()
        if first is None:
            Schedule.objects.create(name=HEALTH_SCHEDULE, **values)
        else:
            found.filter(pk=first.pk).update(**values)
            found.exclude(pk=first.pk).delete()
