"""Wagtail's AdminURLFinder knows where our rows are shown: log entries, reports and
search link to the settings page, the delivery log and the history — for users who
may change the SMTP settings, and no one else."""

import pytest
from django.urls import reverse
from wagtail.admin.admin_url_finder import AdminURLFinder

from tests.utils import configure, edit_url
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import (
    DeliveryAttempt,
    OutboxMessage,
    SmtpLiveConfiguration,
    SmtpSettings,
    SmtpStatusEvent,
)

pytestmark = pytest.mark.django_db


def held_message():
    envelope = outbox.Envelope(
        "<buchung@test>",
        "Buchung",
        "shop@x.example",
        False,
        ["kunde@example.com"],
        b"Subject: Buchung\r\n\r\nText\r\n",
    )
    [row] = outbox.accept([envelope], held=True)
    return OutboxMessage.objects.get(pk=row.pk)


def test_a_message_and_its_attempts_link_to_its_page_in_the_delivery_log(client, smtp_editor):
    message = held_message()
    attempt = DeliveryAttempt.objects.create(message=message, status="deferred")
    finder = AdminURLFinder(smtp_editor)

    url = finder.get_edit_url(message)

    assert url == reverse("wagtail_icarus_smtp_outbox:detail", args=[message.pk])
    assert finder.get_edit_url(attempt) == url
    client.force_login(smtp_editor)
    assert "Buchung" in client.get(url).content.decode()


def test_settings_live_configuration_and_events_link_to_the_settings_and_history(
    server, smtp_editor
):
    configure(server)
    finder = AdminURLFinder(smtp_editor)

    assert finder.get_edit_url(SmtpSettings.load()) == edit_url()
    assert finder.get_edit_url(SmtpLiveConfiguration.objects.get()) == edit_url()
    event = SmtpStatusEvent.objects.first()
    assert finder.get_edit_url(event) == reverse("wagtail_icarus_smtp:history")


def test_no_link_for_users_without_the_permission(server, admin_only_user):
    configure(server)
    finder = AdminURLFinder(admin_only_user)

    assert finder.get_edit_url(held_message()) is None
    assert finder.get_edit_url(SmtpLiveConfiguration.objects.get()) is None
    assert finder.get_edit_url(SmtpStatusEvent.objects.first()) is None


def test_the_site_history_links_our_log_entries_to_the_settings_page(server, editor, client):
    configure(server)  # logs "test started" and "test succeeded" on the settings
    client.force_login(editor)

    page = client.get(reverse("wagtailadmin_reports:site_history")).content.decode()

    assert f'href="{edit_url()}"' in page
