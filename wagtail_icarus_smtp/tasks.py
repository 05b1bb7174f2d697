"""django-q2 entry points. Arguments are ids and versions only — never a secret,
because django-q2 stores task arguments and results in the database."""

from django.db import transaction
from django_q.tasks import async_task

from . import audit, status, validation

GROUP = "wagtail_icarus_smtp"


def enqueue_validation(smtp_settings, *, user=None):
    """Mark the current draft version as being tested and queue the test after commit."""
    smtp_settings.record(status.RUNNING, user=user)
    audit.log(smtp_settings, "test_started", user=user, version=smtp_settings.version)
    pk, version = smtp_settings.pk, smtp_settings.version
    transaction.on_commit(
        lambda: async_task("wagtail_icarus_smtp.tasks.validate_settings", pk, version, group=GROUP)
    )


def validate_settings(settings_pk, version):
    """Test draft ``version`` of the settings ``settings_pk``; promote it if it works."""
    event = validation.validate(settings_pk, version)
    if event is None:
        return {"status": "superseded"}
    return {"status": event.status, "category": event.category}
