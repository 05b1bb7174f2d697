"""Saving the editor's draft: bump its version and start a connection test when needed."""

from django.db import transaction

from .. import audit, queue, signals, status
from ..models import CONNECTION_FIELDS, SmtpSettings


def needs_test(smtp_settings, previous_connection):
    """Test when connection data changed, or when a complete draft has no good result."""
    if smtp_settings.missing_fields():
        return False
    if smtp_settings.connection_data() != previous_connection:
        return True
    return smtp_settings.status in (status.STARTED, status.FAILED) or smtp_settings.is_stale


def save(
    smtp_settings, *, previous_connection, previous_target=None, previous_enabled=None, user=None
):
    """Save ``smtp_settings`` (the draft); record the new status; enqueue a test.

    Changing only the display name or the switch needs no new test and keeps the
    version. Anything else that needs a test gets a new version, so a result for an
    older version can never promote anything.
    """
    test = needs_test(smtp_settings, previous_connection)
    changed = changed_fields(smtp_settings, previous_connection)
    with transaction.atomic():
        if smtp_settings.pk:
            locked = SmtpSettings.objects.select_for_update().get(pk=smtp_settings.pk)
            smtp_settings.version = locked.version
        if test or changed:
            smtp_settings.version += 1
        smtp_settings.save()
        smtp_settings.forget_events()
        if test:
            enqueue_test(smtp_settings, user=user)
        else:
            last = smtp_settings.events.first()
            if changed or last is None or last.status != smtp_settings.status:
                smtp_settings.record(smtp_settings.status, user=user)
        _audit(smtp_settings, changed, previous_target, previous_enabled, user)
        if smtp_settings.enabled and previous_enabled is False:
            # held mail goes out now
            transaction.on_commit(lambda: signals.sending_possible.send(sender=SmtpSettings))
    return smtp_settings


def enqueue_test(smtp_settings, *, user=None):
    """Mark the current draft version as being tested and queue the test after commit."""
    smtp_settings.record(status.RUNNING, user=user)
    audit.log(smtp_settings, "test_started", user=user, version=smtp_settings.version)
    queue.after_commit(queue.VALIDATE, smtp_settings.pk, smtp_settings.version)


def changed_fields(smtp_settings, previous_connection):
    """Names of the connection fields whose value differs from ``previous_connection``."""
    return [
        name
        for name, before, after in zip(
            CONNECTION_FIELDS, previous_connection, smtp_settings.connection_data(), strict=True
        )
        if before != after
    ]


def _audit(smtp_settings, changed, previous_target, previous_enabled, user):
    if changed:
        audit.log(
            smtp_settings,
            "credentials_changed",
            user=user,
            fields=audit.field_names(changed),
            **audit.target_change(previous_target, smtp_settings),
        )
    if previous_enabled is not None and previous_enabled != smtp_settings.enabled:
        action = "sending_enabled" if smtp_settings.enabled else "sending_disabled"
        audit.log(smtp_settings, action, user=user)
