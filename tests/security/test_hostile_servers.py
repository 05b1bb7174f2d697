"""Hostile SMTP servers (issue 8): endless replies, malformed AUTH challenges and
credentials echoed back end as a failure category, never as a hang, a crash, a huge
transcript or a password in the history, the status JSON or an error report."""

import base64
import logging
import sys
import time

import pytest
from django.core import mail
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.log import AdminEmailHandler
from django.views.debug import ExceptionReporter

import tests.urls
from tests import smtpservers
from tests.conftest import MAILBOX
from tests.utils import XHR, committed, configure, submit
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.smtp import failures, transport

pytestmark = pytest.mark.django_db

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
#: ICARUS_SMTP_TIMEOUT in these tests, and what a request may take on top of it.
DEADLINE = 3
MARGIN = 2
#: Its base64 forms contain "+" and "/", so standard and URL-safe base64 differ.
PASSWORD = "Ge?heim>>Pass~~2"


def secret_forms(password=PASSWORD, user=MAILBOX):
    """The password and every base64 form of it and of the AUTH PLAIN blob."""
    forms = {password}
    for raw in (password.encode(), f"\0{user}\0{password}".encode()):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw).decode()
            forms |= {text, text.rstrip("=")}
    return forms


def assert_no_secret(text):
    leaked = [form for form in secret_forms() if form in text]
    assert not leaked, f"secret forms in the text: {leaked}"


def book(request):
    """A site's own view: it confirms a booking by e-mail, through the outbox."""
    mail.send_mail("Buchung", "Danke!", None, ["kunde@example.com"])
    return HttpResponse("gebucht")


urlpatterns = [path("book/", book, name="send-booking"), *tests.urls.urlpatterns]


@pytest.fixture
def short_deadline(settings):
    settings.ICARUS_SMTP_TIMEOUT = DEADLINE


@pytest.fixture
def hostile(start_server, trust, ca):
    """Start a ``HostileServer`` (STARTTLS, certificate from the test CA) the plugin
    trusts; ``port=`` takes over the port of a server stopped before."""

    def start(**kwargs):
        server = start_server(smtpservers.HostileServer, tls_context=ca.server_context(), **kwargs)
        trust(server.port, "starttls")
        return server

    return start


@pytest.fixture
def turns_hostile(server, hostile):
    """Working settings, tested and live, on a real server, which then turns hostile
    (a hostile server on its port): what the test e-mail and the delivery meet."""

    def turn(**kwargs):
        configure(server, password=PASSWORD)
        server.stop()
        return hostile(port=server.port, **kwargs)

    server.users[MAILBOX] = PASSWORD
    return turn


def post_testmail(client, to="kunde@example.org"):
    return client.post(reverse("wagtail_icarus_smtp:testmail"), {"to": to}, **XHR)


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


# -- 3. replies and transcripts are bounded ----------------------------------------------


def test_endless_ehlo_ends_the_connection_test_in_time_as_protocol(
    hostile, smtp_editor, short_deadline
):
    flood = hostile(ehlo=smtpservers.Flood())

    form, seconds = timed(submit, user=smtp_editor, port=str(flood.port), password=PASSWORD)

    assert not form.errors
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "failed"
    assert smtp_settings.failure_category == "protocol"
    assert "too long" in smtp_settings.current_event.reply
    assert seconds < DEADLINE + MARGIN


def test_endless_ehlo_ends_the_test_email_in_time_as_protocol(
    turns_hostile, smtp_editor, client, short_deadline
):
    turns_hostile(ehlo=smtpservers.Flood())
    client.force_login(smtp_editor)

    response, seconds = timed(post_testmail, client)

    data = response.json()
    assert response.status_code == 200
    assert data["ok"] is False
    assert data["category"] == "protocol"
    assert "too long" in data["reply"]
    assert seconds < DEADLINE + MARGIN
    # What the editor gets to see is bounded: a few lines of the flood, not megabytes.
    assert data["transcript"].count("S: 250-x") <= transport.MAX_REPLY_LINES
    assert len(response.content) < transport.MAX_TRANSCRIPT


def test_endless_ehlo_ends_a_delivery_in_time_as_protocol(
    turns_hostile, our_backend, short_deadline
):
    turns_hostile(ehlo=smtpservers.Flood())

    with committed():
        started = time.monotonic()
        mail.send_mail("Buchung", "Danke!", None, ["kunde@example.com"])
    seconds = time.monotonic() - started

    row = OutboxMessage.objects.get()
    assert row.status == "deferred"
    assert row.last_category == "protocol"
    assert "too long" in row.last_reply
    assert seconds < DEADLINE + MARGIN


def test_a_long_conversation_keeps_only_the_beginning_of_its_transcript(
    turns_hostile, smtp_editor, client, short_deadline, monkeypatch
):
    """Every reply within its budget, but many of them: the transcript is shortened."""
    monkeypatch.setattr(transport, "MAX_TRANSCRIPT", 16 * 1024)  # three long replies pass it
    long_reply = "\n".join(["250-" + "y" * 150] * 90 + ["250 OK"])
    turns_hostile(then=[long_reply, long_reply, "354 go ahead", long_reply, "221 Bye"])
    client.force_login(smtp_editor)

    data = post_testmail(client).json()

    assert data["ok"] is True
    assert data["transcript"].endswith("(transcript shortened)")
    assert len(data["transcript"]) < transport.MAX_TRANSCRIPT


# -- 4. no secret in an error report -------------------------------------------------------


@pytest.fixture
def error_mails(settings):
    """Error reports as a production site sends them: ``DEBUG=False``, ``ADMINS``, and
    ``AdminEmailHandler(include_html=True)`` (the locals of every frame) on
    ``django.request`` and on our logger; they land in ``mail.outbox`` (locmem)."""
    settings.DEBUG = False
    settings.ADMINS = [("Owner", "owner@dropzone.example")]
    handler = AdminEmailHandler(include_html=True, email_backend=LOCMEM)
    handler.setLevel(logging.ERROR)
    loggers = [logging.getLogger("django.request"), logging.getLogger("wagtail_icarus_smtp")]
    for logger in loggers:
        logger.addHandler(handler)
    yield mail.outbox
    for logger in loggers:
        logger.removeHandler(handler)


def mail_texts(messages):
    """Subject, body and HTML alternatives of every message."""
    for message in messages:
        yield message.subject
        yield message.body
        for content, _mimetype in getattr(message, "alternatives", []):
            yield content


def assert_no_secret_in_reports(messages):
    for text in mail_texts(messages):
        assert_no_secret(text)
    # Django's own mail_admins handler sends through the site's backend: our outbox.
    for mime in OutboxMessage.objects.exclude(mime=None).values_list("mime", flat=True):
        assert_no_secret(bytes(mime).decode("utf-8", "replace"))


def crash(*args, **kwargs):
    raise RuntimeError("a bug after AUTH")


def test_an_error_inside_auth_carries_no_smtplib_frame(hostile):
    """smtplib's ``auth`` frame holds the AUTH PLAIN blob in its locals: no exception
    that leaves ``transport.connect`` has it in its traceback."""
    bad = hostile(auth="334 abc")
    mailbox = transport.Mailbox("localhost", bad.port, MAILBOX, PASSWORD)

    try:
        transport.connect(mailbox, transport.Deadline(DEADLINE))
    except Exception as error:
        html = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
        category = failures.classify(error, secrets=[PASSWORD]).category

    assert category == "protocol"
    assert "MalformedAuthReply" in html
    assert "initial_response" not in html
    assert_no_secret(html)


def test_malformed_auth_challenge_in_the_test_email_is_protocol_not_a_500(
    turns_hostile, smtp_editor, client, error_mails
):
    turns_hostile(auth="334 abc")
    client.raise_request_exception = False
    client.force_login(smtp_editor)

    response = post_testmail(client)

    assert response.status_code == 200
    assert response.json()["category"] == "protocol"
    assert_no_secret(response.content.decode())
    assert error_mails == []


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_malformed_auth_challenge_in_a_delivery_defers_as_protocol(
    turns_hostile, client, our_backend, error_mails
):
    """The backend sends right after the caller's commit: here, inside the request."""
    turns_hostile(auth="334 abc")
    client.raise_request_exception = False

    response = client.post(reverse("send-booking"))

    assert response.status_code == 200
    row = OutboxMessage.objects.get(subject="Buchung")
    assert (row.status, row.last_category) == ("deferred", "protocol")
    assert error_mails == []


def test_a_crash_after_auth_in_the_test_email_reports_no_secret(
    turns_hostile, smtp_editor, client, error_mails, monkeypatch
):
    """A bug after the server echoed the credentials: the error report (a 500 with the
    locals of every frame) shows none of them."""
    turns_hostile(auth=smtpservers.echo_credentials())
    client.raise_request_exception = False
    client.force_login(smtp_editor)
    monkeypatch.setattr(failures, "classify", crash)

    response = post_testmail(client)

    assert response.status_code == 500
    assert any("a bug after AUTH" in text for text in mail_texts(error_mails))
    assert_no_secret_in_reports(error_mails)


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_a_crash_after_auth_in_a_delivery_reports_no_secret(
    turns_hostile, client, our_backend, error_mails, monkeypatch, settings
):
    """The same bug in the delivery right after the commit: the booking succeeds, the
    report names the error and no secret; the worker's retry records the refusal."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True  # the opt-in: sending in the request
    turns_hostile(auth=smtpservers.echo_credentials())
    client.raise_request_exception = False
    classify = failures.classify
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        return crash() if len(calls) == 1 else classify(*args, **kwargs)

    monkeypatch.setattr(failures, "classify", crash_once)

    response = client.post(reverse("send-booking"))

    assert response.status_code == 200
    assert any("a bug after AUTH" in text for text in mail_texts(error_mails))
    assert_no_secret_in_reports(error_mails)
    row = OutboxMessage.objects.get(subject="Buchung")
    assert (row.status, row.last_category) == ("deferred", "auth")
    assert row.last_reply == "535 5.7.8 bad credentials ****"


def test_a_crash_in_a_workers_delivery_shows_no_secret_in_its_frames(
    turns_hostile, our_backend, monkeypatch
):
    turns_hostile(auth=smtpservers.echo_credentials())
    with committed():
        mail.send_mail("Buchung", "Danke!", None, ["kunde@example.com"])
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    monkeypatch.setattr(failures, "classify", crash)

    try:
        outbox.drain()
    except RuntimeError:
        html = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()

    assert "_deliver_batch" in html and "a bug after AUTH" in html
    assert_no_secret(html)


# -- 6. masking covers echoed credentials ----------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [
        None,
        lambda blob: base64.urlsafe_b64encode(base64.b64decode(blob)).decode(),
        lambda blob: blob.decode().rstrip("="),
        lambda blob: "x" + blob.decode(),
    ],
    ids=["standard", "url-safe", "unpadded", "glued"],
)
def test_echoed_credentials_reach_neither_history_nor_status_json(
    hostile, smtp_editor, client, transform
):
    echo = hostile(auth=smtpservers.echo_credentials(transform=transform))

    form = submit(user=smtp_editor, port=str(echo.port), password=PASSWORD)

    assert not form.errors
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.failure_category == "auth"
    assert smtp_settings.current_event.reply.startswith("535 5.7.8 bad credentials")
    client.force_login(smtp_editor)
    history = client.get(reverse("wagtail_icarus_smtp:history"))
    status = client.get(reverse("wagtail_icarus_smtp:status"), **XHR)
    assert history.status_code == status.status_code == 200
    assert "535 5.7.8 bad credentials ****" in history.content.decode()
    assert status.json()["reply"] == "535 5.7.8 bad credentials ****"
    assert_no_secret(history.content.decode())
    assert_no_secret(status.content.decode())


def test_echoed_credentials_are_masked_in_the_test_email_transcript(
    turns_hostile, smtp_editor, client
):
    turns_hostile(auth=smtpservers.echo_credentials())
    client.force_login(smtp_editor)

    response = post_testmail(client)

    data = response.json()
    assert data["category"] == "auth"
    assert "S: 535 5.7.8 bad credentials ****" in data["transcript"]
    assert_no_secret(response.content.decode())
