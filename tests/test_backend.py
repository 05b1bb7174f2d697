"""The email backend accepts messages into the outbox and, after the caller's commit,
sends them through the live configuration when sending is enabled (held otherwise)."""

import asyncio
import logging
import time

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends import smtp
from django.core.mail.message import sanitize_address
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import smtpservers
from tests.conftest import MAILBOX
from tests.utils import BACKEND, committed, configure
from wagtail_icarus_smtp import backends
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import OutboxMessage

pytestmark = pytest.mark.django_db


def test_send_mail_arrives_from_the_mailbox_with_reply_to(server, our_backend):
    configure(server)

    with committed():
        sent = mail.send_mail(
            "Buchungsbestätigung", "Danke!", "shop@dropzone.example", ["kunde@example.com"]
        )

    assert sent == 1
    message = server.wait_for_messages(1)[0]
    assert message.mail_from == MAILBOX
    assert message.rcpt_tos == ["kunde@example.com"]
    assert message.message["From"] == f"Dropzone Musterstadt <{MAILBOX}>"
    assert message.message["Reply-To"] == "shop@dropzone.example"
    assert message.message["Subject"] == "Buchungsbestätigung"


def test_own_mailbox_as_sender_gets_no_reply_to(server, our_backend):
    configure(server, from_name="")

    with committed():
        mail.send_mail("Hallo", "Text", MAILBOX, ["kunde@example.com"])

    message = server.wait_for_messages(1)[0]
    assert message.message["From"] == MAILBOX
    assert message.message["Reply-To"] is None


def test_callers_message_is_not_changed_and_existing_reply_to_is_kept(server, our_backend):
    configure(server)
    email = EmailMessage(
        "Hallo", "Text", "shop@dropzone.example", ["a@example.com"], reply_to=["team@example.com"]
    )

    with committed():
        email.send()

    message = server.wait_for_messages(1)[0]
    assert message.message["Reply-To"] == "team@example.com"
    assert email.from_email == "shop@dropzone.example"


def test_disabled_sends_nothing_raises_nothing_and_holds(server, our_backend, caplog):
    """Issue 5: not sent is not lost — the message is held and counted as accepted."""
    configure(server, enabled=None)

    with caplog.at_level(logging.WARNING, logger="wagtail_icarus_smtp"), committed():
        sent = mail.send_mail("Buchung", "Text", None, ["kunde@example.com"])

    assert sent == 1
    assert server.messages == []
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == ["held"]
    assert "disabled" in caplog.text


def test_nothing_configured_sends_nothing_raises_nothing_and_holds(our_backend, caplog):
    with caplog.at_level(logging.WARNING, logger="wagtail_icarus_smtp"), committed():
        assert mail.send_mail("Buchung", "Text", None, ["kunde@example.com"]) == 1
    assert "not_configured" in caplog.text
    assert OutboxMessage.objects.get().status == "held"


def one_insert(most=50):
    """As many messages as the database takes in one INSERT (SQLite: 999 parameters,
    so it depends on the number of columns), at most ``most``."""
    fields = [field for field in OutboxMessage._meta.concrete_fields if not field.primary_key]
    return min(most, connection.ops.bulk_batch_size(fields, range(most)))


@pytest.mark.parametrize("many", [False, True])
def test_many_messages_are_accepted_with_constant_queries_and_sent_over_one_connection(
    server, our_backend, django_assert_num_queries, many
):
    count = one_insert() if many else 5
    configure(server)
    sessions = server.sessions
    messages = [EmailMessage(f"M{i}", "Text", None, [f"k{i}@example.com"]) for i in range(count)]

    with committed():
        # The configuration (the settings row, the live row), one bulk insert.
        with django_assert_num_queries(3):
            assert EmailBackend().send_messages(messages) == count
        assert server.messages == []  # nothing leaves before the commit

    server.wait_for_messages(count)
    assert server.sessions == sessions + 1
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_configuration_is_loaded_per_connection(server, start_server, trust, our_backend, settings):
    """Sending in the request (opt-in): a change saved elsewhere is used by the next
    connection, not the open one."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True
    configure(server)
    backend = EmailBackend()
    with backend:
        with committed():
            backend.send_messages([EmailMessage("1", "x", None, ["a@example.com"])])
        other = start_server(mode="starttls")
        trust(server.port)
        trust(other.port)
        configure(other)  # saved "in another process"
        with committed():
            backend.send_messages([EmailMessage("2", "x", None, ["a@example.com"])])
    with committed():
        backend.send_messages([EmailMessage("3", "x", None, ["a@example.com"])])

    # The previous mailbox was told about the change, through the previous server.
    notice = "Security notice: the mail server of Test site is being changed"
    assert [m.message["Subject"] for m in server.wait_for_messages(3)] == ["1", notice, "2"]
    assert [m.message["Subject"] for m in other.wait_for_messages(1)] == ["3"]


def test_connection_options_in_settings_are_rejected():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="host"):
        EmailBackend(host="smtp.example.com")


def test_failing_server_defers_instead_of_raising(server, our_backend):
    """Issue 5: the caller learns the message is safe; the outbox retries it later."""
    configure(server)
    server.stop()

    with committed():
        assert mail.send_mail("x", "y", None, ["a@example.com"]) == 1
        assert mail.send_mail("x", "y", None, ["b@example.com"], fail_silently=True) == 1

    rows = OutboxMessage.objects.all()
    assert [row.status for row in rows] == ["deferred", "deferred"]
    assert {row.last_category for row in rows} == {"connection"}


def test_backend_works_as_the_configured_mailer(server, settings):
    """Django 6.1: a MAILERS entry (own options popped first); before: EMAIL_BACKEND."""
    import django

    configure(server)
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"timeout": 5}}}
        connection = mail.mailers["default"]
        assert connection.alias == "default"
    else:
        settings.EMAIL_BACKEND = BACKEND
        connection = mail.get_connection(timeout=5)

    assert isinstance(connection, EmailBackend)
    assert connection.deadline_seconds == 5
    with committed():
        message = EmailMessage("Mailer", "x", None, ["a@example.com"])
        assert connection.send_messages([message]) == 1
    # What Wagtail's own send_mail() does: get_connection() with username/password None.
    with committed():
        assert mail.send_mail("Wagtail", "x", None, ["b@example.com"]) == 1
    subjects = [m.message["Subject"] for m in server.wait_for_messages(2)]
    assert subjects == ["Mailer", "Wagtail"]


def test_the_mailers_timeout_option_is_the_deadline_of_its_exchanges(server, monkeypatch, settings):
    """``timeout`` given to the backend (a MAILERS option) bounds each exchange; a server
    slower than that defers the message instead of holding the caller for 15 s."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True  # the opt-in: sending in the request
    configure(server)
    original = smtpservers._Handler.handle_DATA

    async def slow_data(self, server_, session, envelope):
        await asyncio.sleep(5)
        return await original(self, server_, session, envelope)

    monkeypatch.setattr(smtpservers._Handler, "handle_DATA", slow_data)
    started = time.monotonic()
    with committed():
        assert EmailBackend(timeout=1).send_messages([EmailMessage("Eilig", "x", None, ["a@x.de"])])

    assert time.monotonic() - started < 4
    row = OutboxMessage.objects.get()
    assert (row.status, row.last_category) == ("deferred", "timeout")


_DJANGO_CHECK = getattr(smtp.EmailBackend, "prep_address", None)


def djangos_recipient(address):
    """What Django's own SMTP backend writes as the envelope recipient."""
    if _DJANGO_CHECK is not None:  # Django 6.0+
        return _DJANGO_CHECK(EmailBackend(), address)
    return sanitize_address(address, "utf-8")


@settings(max_examples=300, deadline=None)
@given(address=st.from_regex(backends._PLAIN_ADDRESS, fullmatch=True))
def test_a_plain_address_is_written_as_djangos_check_writes_it(address):
    message = EmailMessage("Buchung", "Text", None, [address])

    assert EmailBackend().recipient(address, message) == djangos_recipient(address)


@pytest.mark.parametrize(
    "address",
    ["Kunde <kunde@example.org>", "kunde@bücher.example", "a..b@example.org", " k@example.org"],
)
def test_other_addresses_go_through_djangos_check(address):
    message = EmailMessage("Buchung", "Text", None, [address])

    assert outcome(EmailBackend().recipient, address, message) == outcome(
        djangos_recipient, address
    )
    assert backends._PLAIN_ADDRESS.fullmatch(address) is None


def outcome(check, *args):
    """What ``check`` returns, or the type of error it raises (Django 6 refuses
    ``a..b@`` where 5.2 passes it on)."""
    try:
        return check(*args)
    except ValueError as error:
        return type(error)


def test_an_address_with_a_line_break_is_refused_before_anything_is_stored(db):
    message = EmailMessage("Buchung", "Text", None, ["kunde@example.org\nBcc: x@evil.example"])

    with pytest.raises(ValueError):
        EmailBackend().send_messages([message])

    assert not OutboxMessage.objects.exists()
