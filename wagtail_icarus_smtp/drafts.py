"""Saving the editor's draft: bump its version and start a connection test when needed."""

from django.db import transaction

from . import status, tasks
from .models import SmtpSettings


def needs_test(smtp_settings, previous_connection):
    """Test when connection data changed, or when a complete draft has no good result."""
    if smtp_settings.missing_fields():
        return False
    if smtp_settings.connection_data() != previous_connection:
        return True
    return smtp_settings.status in (status.STARTED, status.FAILED) or smtp_settings.is_stale


def save(smtp_settings, *, previous_connection, previous_enabled=None, user=None):
    """Save ``smtp_settings`` (the draft); record the new status; enqueue a test.

    Changing only the display name or the switch needs no new test and keeps the
    version. Anything else that needs a test gets a new version, so a result for an
    older version can never promote anything.
    """
    test = needs_test(smtp_settings, previous_connection)
    changed = smtp_settings.connection_data() != previous_connection
    with transaction.atomic():
        if smtp_settings.pk:
            locked = SmtpSettings.objects.select_for_update().get(pk=smtp_settings.pk)
            smtp_settings.version = locked.version
        if test or changed:
            smtp_settings.version += 1
        smtp_settings.save()
        smtp_settings.__dict__.pop("current_event", None)
        if test:
            tasks.enqueue_validation(smtp_settings, user=user)
        else:
            last = smtp_settings.events.first()
            if changed or last is None or last.status != smtp_settings.status:
                smtp_settings.record(smtp_settings.status, user=user)
    return smtp_settings

