"""Data smtplib cannot handle and bugs inside the connection test (issue 8): the test
ends ``failed`` with a category and a history row, never stays ``running``; the test
e-mail to an internationalised domain is sent, never a 500."""

import logging
import signal
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django_q.conf import Conf

from tests.conftest import MAILBOX, PASSWORD
from tests.utils import XHR, configure, german, submit
from wagtail_icarus_smtp.admin import report, testmail
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.smtp import transport

pytestmark = pytest.mark.django_db

UMLAUT_PASSWORD = "Straße-Fallschirm-ä"


def assert_failed_not_running(category):
    smtp_settings = SmtpSettings.load()
    data = report.build(smtp_settings)
    assert (data["status"], data["category"]) == ("failed", category)
    assert data["stale"] is False and data["stale_hint"] == ""
    assert [(row["status"], row["category"]) for row in data["events"][:2]] == [
        ("failed", category),
        ("running", ""),
    ]
    return data


def test_a_password_beyond_ascii_ends_the_connection_test_as_failed_auth(server, smtp_editor):
    server.users[MAILBOX] = UMLAUT_PASSWORD

    form = submit(user=smtp_editor, port=str(server.port), password=UMLAUT_PASSWORD)

    assert not form.errors
    data = assert_failed_not_running("auth")
    assert "cannot be sent to the mail server yet" in data["reply"]
    assert UMLAUT_PASSWORD not in str(data)


def test_a_password_beyond_ascii_is_explained_in_german(server, smtp_editor, client):
    with translation.override("de"):  # a German site: its worker writes German
        submit(user=smtp_editor, port=str(server.port), password=UMLAUT_PASSWORD)
    client.force_login(german(smtp_editor))

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()

    assert data["category_label"] == "Authentifizierung fehlgeschlagen"
    assert "dem Mailserver noch nicht übermittelt werden können" in data["reply"]


def test_a_bug_inside_the_connection_test_is_recorded_and_logged_without_secrets(
    server, smtp_editor, monkeypatch, caplog
):
    def buggy_probe(mailbox, **kwargs):
        raise KeyError(mailbox.password)

    monkeypatch.setattr(transport, "probe", buggy_probe)

    with caplog.at_level(logging.ERROR, logger="wagtail_icarus_smtp"):
        submit(user=smtp_editor, port=str(server.port))

    data = assert_failed_not_running("protocol")
    assert data["reply"] == "KeyError: '****'"
    [record] = [r for r in caplog.records if r.name == "wagtail_icarus_smtp"]
    assert record.getMessage() == "The connection test failed unexpectedly: KeyError: '****'"
    assert record.exc_info is None  # a traceback's frames would carry the password
    assert PASSWORD not in caplog.text


@pytest.mark.qcluster
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_ends_a_password_beyond_ascii_as_failed(
    server, qcluster, monkeypatch, smtp_editor
):
    """What the attack run saw: the worker crashed and the page said "running" until it
    blamed a missing worker."""
    monkeypatch.setattr(Conf, "SYNC", False)  # enqueue into the ORM broker

    configure(server, user=smtp_editor, password=UMLAUT_PASSWORD)

    deadline = time.monotonic() + 90
    while SmtpSettings.load().status == "running" and time.monotonic() < deadline:
        assert qcluster.poll() is None, qcluster.stdout.read()
        time.sleep(0.3)
    qcluster.send_signal(signal.SIGTERM)
    output = qcluster.communicate(timeout=30)[0]
    assert SmtpSettings.load().status == "failed", output
    assert_failed_not_running("auth")
    assert UMLAUT_PASSWORD not in output


# -- the test e-mail to an internationalised domain ---------------------------------------


def test_the_test_email_reaches_an_idn_domain_in_punycode(server, smtp_editor, client):
    configure(server)
    client.force_login(smtp_editor)

    response = client.post(
        reverse("wagtail_icarus_smtp:testmail"), {"to": "test@müller-sprung.de"}, **XHR
    )

    assert response.status_code == 200
    assert response.json()["ok"] is True
    [received] = server.wait_for_messages(1)
    assert received.rcpt_tos == ["test@xn--mller-sprung-dlb.de"]
    assert received.message["To"] == "test@xn--mller-sprung-dlb.de"


def test_the_envelope_address_refuses_a_local_part_beyond_ascii():
    assert testmail.envelope_address("a@müller-sprung.de") == "a@xn--mller-sprung-dlb.de"
    with pytest.raises(ValidationError, match="before the @"):
        testmail.envelope_address("müller@example.org")
