"""A site that migrated an earlier version upgrades in place: migrations are added,
never rewritten once they have landed."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

APP = "wagtail_icarus_smtp"


@pytest.mark.django_db(transaction=True)
def test_a_site_on_the_first_schema_keeps_its_settings_and_gains_the_outbox():
    call_command("migrate", APP, "0001", verbosity=0)  # where the first sites stand
    old = MigrationExecutor(connection).loader.project_state((APP, "0001_initial")).apps
    old.get_model(APP, "SmtpSettings").objects.create(email="a@dropzone.example", unsent_count=3)
    assert "wagtail_icarus_smtp_outboxmessage" not in connection.introspection.table_names()

    call_command("migrate", APP, verbosity=0)

    from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

    assert SmtpSettings.objects.get().email == "a@dropzone.example"
    assert OutboxMessage.objects.count() == 0  # the table exists and works
