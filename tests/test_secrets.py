"""The password never shows: not in HTML, JSON, history, task rows, logs or the database."""

import base64
import logging

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.utils import configure, edit_url, submit
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.smtp import transport

pytestmark = pytest.mark.django_db

B64 = base64.b64encode(PASSWORD.encode()).decode()


def assert_secret_free(text, *, ciphertext=None):
    assert PASSWORD not in text
    assert B64 not in text
    if ciphertext:
        assert ciphertext not in text


def test_admin_page_and_json_never_contain_the_password(server, editor, client):
    smtp_settings = configure(server, user=editor)
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()
    json = client.get(
        reverse("wagtail_icarus_smtp:status"), HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    ).content.decode()

    assert_secret_free(page, ciphertext=smtp_settings._password_encrypted)
    assert_secret_free(json, ciphertext=smtp_settings._password_encrypted)
    assert "A password is stored" in page
    assert "Setup complete" in page


def test_history_task_rows_and_raw_database_rows_hold_no_password(server):
    from django_q.models import Task

    submit(port=str(server.port), password="wrong-" + PASSWORD)  # a failure with a reply
    configure(server)

    for event in SmtpSettings.load().events.all():
        assert_secret_free(f"{event.reply} {event.category} {event.status}")
    for task in Task.objects.all():
        assert_secret_free(repr((task.args, task.kwargs, task.result, task.name)))
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith(("wagtail_icarus_smtp", "django_q")):
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (table names from introspection)
                assert_secret_free(repr(cursor.fetchall()))


def test_logs_and_smtplib_debug_output_mask_the_password(server, capsys, caplog):
    smtp_settings = configure(server)
    mailbox = transport.Mailbox("localhost", server.port, smtp_settings.email, PASSWORD)

    with caplog.at_level(logging.DEBUG):
        transport.probe(mailbox, debuglevel=2)

    err = capsys.readouterr().err
    assert "AUTH" in err or "auth" in err  # the debug transcript was really written
    assert "credentials masked" in err
    assert_secret_free(err)
    assert_secret_free(caplog.text)


def test_password_field_is_write_only_and_empty_submit_keeps_it(server, editor, client):
    smtp_settings = configure(server)
    stored = smtp_settings._password_encrypted
    client.force_login(editor)

    page = client.get(edit_url()).content.decode()
    assert 'name="password"' in page
    assert 'value="' + PASSWORD not in page

    submit(port=str(server.port), password="", from_name="Anders")
    assert SmtpSettings.load()._password_encrypted == stored
    assert SmtpSettings.load().from_name == "Anders"


def test_a_transcript_records_the_conversation_with_credentials_masked(server):
    smtp_settings = configure(server)
    mailbox = transport.Mailbox("localhost", server.port, smtp_settings.email, PASSWORD)
    transcript = []

    client = transport.connect(mailbox, transport.Deadline(5), transcript=transcript)
    transport.quit_quietly(client)

    text = "\n".join(transcript)
    assert "STARTTLS" in text.upper()
    assert "235" in text  # authentication succeeded, and the transcript shows it
    assert transport.CREDENTIALS_MASKED in transcript  # what the client sent in AUTH
    assert text.startswith("S: 220")  # the greeting too: recorded where the bytes pass
    assert_secret_free(text)
