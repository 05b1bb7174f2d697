"""The periodic health check: re-test the live configuration without sending a message.

History rows are written only when the result differs from the last one; alerts are
evaluated, due mail is drained and old bodies are purged on the way.
"""

import smtplib

from django.db import transaction
from django.db.models.signals import post_migrate
from django.views.decorators.debug import sensitive_variables

from . import alerts, conf, failures, live, outbox, status, tasks, transport
from .exceptions import IcarusSmtpError, PasswordUnreadable
from .models import SmtpSettings


@sensitive_variables("sending")
def run():
    smtp_settings = SmtpSettings.base_queryset().first()
    live_row = smtp_settings.live_config if smtp_settings else None
    if live_row is None:
        outbox.purge()
        return {"status": "not_configured"}
    sending = None
    try:
        sending = live.sending_for(live_row)
        transport.probe(sending.mailbox)
    except PasswordUnreadable:
        failure = failures.Failure(status.Category.PASSWORD_UNREADABLE)
    except (OSError, IcarusSmtpError, smtplib.SMTPException) as error:
        failure = failures.classify(error, secrets=[sending.mailbox.password])
    else:
        failure = None
    _record(smtp_settings, live_row.version, failure)
    alerts.evaluate(live_failure=failure, live_ok=failure is None)
    if failure is None and smtp_settings.enabled:
        tasks.deliver_outbox()  # what a delivery task does: also schedules the retries
    outbox.purge()
    return {
        "status": status.FAILED if failure else status.COMPLETE,
        "category": failure.category if failure else "",
    }


def _record(smtp_settings, version, failure):
    """A history row only when the state of the live configuration changed."""
    value = status.FAILED if failure else status.COMPLETE
    category = failure.category if failure else ""
    last = smtp_settings.events.filter(version=version, kind="").first()
    if last is not None and (last.status, last.category) == (value, category):
        return None
    return smtp_settings.events.create(
        status=value,
        category=category,
        reply=failure.reply if failure else "",
        version=version,
    )


def ensure_schedule(**kwargs):
    """Create or update the django-q2 schedule of the health check (idempotent)."""
    from django_q.models import Schedule

    with transaction.atomic():
        found = Schedule.objects.filter(name=tasks.HEALTH_SCHEDULE).order_by("pk")
        minutes = conf.get("HEALTH_CHECK_INTERVAL")
        values = {
            "func": tasks.HEALTH_CHECK,
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        }
        first = found.first()
        if first is None:
            Schedule.objects.create(name=tasks.HEALTH_SCHEDULE, **values)
        else:
            found.filter(pk=first.pk).update(**values)
            found.exclude(pk=first.pk).delete()


def connect_signals(app_config):
    from django.apps import apps

    if apps.is_installed("django_q"):
        post_migrate.connect(
            ensure_schedule, sender=app_config, dispatch_uid="wagtail_icarus_smtp.health"
        )
