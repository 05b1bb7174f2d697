"""Header-safe sender: refused at the form and again before anything is sent."""

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.db import DataError, connection, transaction

from tests.utils import committed, configure, submit
from wagtail_icarus_smtp.models import OutboxMessage, SmtpLiveConfiguration, SmtpSettings
from wagtail_icarus_smtp.setup import live

pytestmark = pytest.mark.django_db

FORBIDDEN_IN_NAME = {
    "CR": "Dropzone\rBcc: victim@example.com",
    "LF": "Dropzone\nBcc: victim@example.com",
    "CRLF": "Dropzone\r\nBcc: victim@example.com",
    "NUL": "Drop\x00zone",
    "other control": "Drop\x1bzone",
    "line separator": "Drop\u2028zone",
    "paragraph separator": "Drop\u2029zone",
    "bidi override": "Drop\u202ezone",
    "bidi isolate": "Drop\u2066zone",
    "encoded word": "=?utf-8?b?QmNjOiB4?=",
    "angle bracket": "Dropzone <evil@example.com>",
    "at sign": "evil@example.com",
    "comma": "Dropzone, Evil",
    "semicolon": "Dropzone; Evil",
    "double quote": 'Dropzone "Evil"',
    "backslash": "Dropzone \\ Evil",
    "over-long": "x" * 101,
}

FORBIDDEN_IN_ADDRESS = {
    "CRLF": "system@dropzone.example\r\nBcc: victim@example.com",
    "LF": "system@dropzone.example\nx",
    "NUL": "system@drop\x00zone.example",
    "two addresses": "system@dropzone.example, victim@example.com",
    "display name": "Evil <system@dropzone.example>",
    "semicolon": "system@dropzone.example;victim@example.com",
    "encoded word": "=?utf-8?q?x?=@dropzone.example",
    "bidi": "system\u202e@dropzone.example",
    "over-long": "x" * 250 + "@dropzone.example",
}


def store_around_the_form(queryset, **values):
    """Write ``values`` directly; False when the database itself refuses them
    (PostgreSQL rejects NUL bytes and over-long values), so they cannot reach sending."""
    try:
        with transaction.atomic():
            queryset.update(**values)
    except DataError:
        assert connection.vendor == "postgresql"
        return False
    return True


@pytest.mark.parametrize("value", FORBIDDEN_IN_NAME.values(), ids=FORBIDDEN_IN_NAME.keys())
def test_form_refuses_unsafe_display_names(value):
    form = submit(from_name=value)

    assert form.errors["from_name"]
    assert SmtpSettings.load().from_name == ""


@pytest.mark.parametrize("value", FORBIDDEN_IN_ADDRESS.values(), ids=FORBIDDEN_IN_ADDRESS.keys())
def test_form_refuses_unsafe_addresses(value):
    form = submit(email=value)

    assert form.errors["email"]
    assert SmtpSettings.load().email == ""


@pytest.mark.parametrize("value", FORBIDDEN_IN_NAME.values(), ids=FORBIDDEN_IN_NAME.keys())
def test_backend_refuses_unsafe_names_that_reached_the_database(server, settings, value):
    """Written around the form (e.g. a shell or a migration): nothing reaches the socket."""
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    configure(server)
    sessions = server.sessions
    if not store_around_the_form(SmtpSettings.objects, from_name=value):
        return

    assert live.load().reason == live.UNSAFE_SENDER
    with committed():
        assert mail.send_mail("x", "y", None, ["kunde@example.com"]) == 1  # held (issue 5)
    assert server.sessions == sessions
    assert server.messages == []
    assert OutboxMessage.objects.get().status == "held"


def test_a_message_that_leaves_has_exactly_one_from_mailbox(server, settings):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    configure(server, from_name="Dropzone Müller-Lüdenscheid")
    message = EmailMessage(
        "Hallo",
        "Text",
        "Someone Else <other@example.com>",
        ["kunde@example.com"],
        headers={"From": "Forged <forged@example.com>"},
    )

    with committed():
        message.send()

    received = server.wait_for_messages(1)[0]
    assert received.data.count(b"\nFrom:") + received.data.startswith(b"From:") == 1
    from_header = received.message["From"]
    assert len(from_header.addresses) == 1
    assert from_header.addresses[0].addr_spec == "system@dropzone.example"
    assert from_header.addresses[0].display_name == "Dropzone Müller-Lüdenscheid"
    assert received.mail_from == "system@dropzone.example"
    assert received.message["Reply-To"] == "Forged <forged@example.com>"


def test_bare_line_endings_and_leading_dots_are_neutralised_on_the_wire(server, settings):
    """SMTP smuggling regression: a body that tries to end DATA early with bare LF/CR."""
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    configure(server)
    body = (
        "Zeile eins\n.\nMAIL FROM:<smuggled@example.com>\r\n"
        "Zeile zwei\r.\rRCPT TO:<victim@example.com>\r\n"
        ".\r\n"
        "..doppelt\n"
        "Ende"
    )

    with committed():
        assert mail.send_mail("Schmuggel", body, None, ["kunde@example.com"]) == 1

    received = server.wait_for_messages(1)
    assert len(received) == 1  # one message, nothing smuggled after a fake end of DATA
    assert server.messages[0].rcpt_tos == ["kunde@example.com"]
    data = server.messages[0].data
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert not any(
        line.upper().startswith(("MAIL FROM:<SMUGGLED", "RCPT TO:<VICTIM"))
        for line in server.commands
    )


@pytest.mark.parametrize("value", FORBIDDEN_IN_ADDRESS.values(), ids=FORBIDDEN_IN_ADDRESS.keys())
def test_backend_refuses_unsafe_addresses_that_reached_the_database(server, settings, value):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    configure(server)
    sessions = server.sessions
    if not store_around_the_form(SmtpLiveConfiguration.objects, email=value):
        return

    assert live.load().reason == live.UNSAFE_SENDER
    with committed():
        assert mail.send_mail("x", "y", None, ["kunde@example.com"]) == 1  # held (issue 5)
    assert server.sessions == sessions
    assert OutboxMessage.objects.get().status == "held"
