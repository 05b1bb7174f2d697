"""Issue 11.6 — provider send limits: the outbox paces itself to the configured limit, and
a provider's rate-limit reply pauses it as a whole until the window has passed.

Against the real local TLS server, which replays the providers' own replies once a
number of messages went through."""

import threading
from datetime import timedelta

import pytest
from django.core.mail import EmailMessage
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation
from django_q.models import Schedule

from tests import mailservers, smtpservers
from tests.conftest import MAILBOX, PASSWORD, UMLAUT_PASSWORD
from tests.utils import XHR, committed, configure, edit_url, german, submit
from wagtail_icarus_smtp import outbox, providers, queue
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import (
    AlertState,
    OutboxMessage,
    SmtpLiveConfiguration,
    SmtpSettings,
)
from wagtail_icarus_smtp.outbox import periodic
from wagtail_icarus_smtp.setup import live

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("our_backend")]

IONOS = "450-Requested mail action not taken: mailbox unavailable\n450 Mail send limit exceeded."
GMAIL = "421-4.7.0 Try again later, closing connection. (MAIL)\n421 4.7.0 Learn more at"
RATE = "451 4.7.0 Rate limit exceeded, try again later"
MICROSOFT = (
    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
    "process message due to a permanent exception with message [BeginDiagnosticData]"
)


class _LimitHandler(smtpservers._Handler):
    """Answers ``limit_reply`` at ``limit_at`` once ``limit_after`` messages went through
    (a ``421`` also ends the session, as the providers do)."""

    def _limit(self, server, stage):
        owner = self.owner
        if owner.limit_reply is None or owner.limit_at != stage:
            return None
        if len(owner.messages) < owner.limit_after:
            return None
        if owner.limit_reply.startswith("421"):
            return self._ending(server, owner.limit_reply)
        return owner.limit_reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._limit(server, "MAIL")
        if reply is not None:
            return reply
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._limit(server, "RCPT")
        if reply is not None:
            return reply
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        reply = self._limit(server, "DATA")
        if reply is not None:
            return reply
        return await super().handle_DATA(server, session, envelope)


class LimitedServer(smtpservers.SmtpServer):
    handler_class = _LimitHandler

    def __init__(self, *, limit_reply=None, limit_at="MAIL", limit_after=0, **kwargs):
        super().__init__(**kwargs)
        self.limit_reply = None if limit_reply is None else smtpservers.format_reply(limit_reply)
        self.limit_at, self.limit_after = limit_at, limit_after


@pytest.fixture
def limited_server(start_server, trust, ca):
    def start(**kwargs):
        server = start_server(cls=LimitedServer, ca=ca, users={MAILBOX: PASSWORD}, **kwargs)
        trust(server.port)
        return server

    return start


def send(count):
    messages = [EmailMessage(f"M{i}", "Text", None, [f"k{i}@example.com"]) for i in range(count)]
    with committed():
        assert EmailBackend().send_messages(messages) == count


def rows():
    return list(OutboxMessage.objects.order_by("pk"))


def live_row():
    return SmtpSettings.load().live_config


@pytest.mark.parametrize(
    ("reply", "stage", "shown"),
    [
        (IONOS, "MAIL", "Mail send limit exceeded"),
        (GMAIL, "MAIL", "Try again later"),
        (RATE, "RCPT", "Rate limit exceeded"),
        (MICROSOFT, "DATA", "SubmissionQuotaExceededException"),
    ],
    ids=["ionos-450", "gmail-421", "451-rate", "microsoft-554"],
)
@pytest.mark.parametrize(
    "extensions",
    [{}, {"pipelining": True}, {"pipelining": True, "chunking": True}],
    ids=["lock-step", "pipelined", "chunked"],
)
def test_a_rate_limit_reply_pauses_and_resumes(
    limited_server, settings, reply, stage, shown, extensions
):
    settings.ICARUS_SMTP_SEND_PAUSE = 600
    server = limited_server(limit_reply=reply, limit_at=stage, limit_after=2, **extensions)
    configure(server, enabled=None)  # off: the five wait, then go out as one batch
    send(5)
    server.clear()

    with committed():
        submit(port=str(server.port))  # sending switched on: the worker drains
    before = timezone.now()

    # Two went out; the third heard the limit; the rest went back unchanged — also
    # those that went out before the limit was heard (pipelined: the fourth's commands
    # follow the third's end of data; chunked: all five in one write) and heard it too.
    assert [row.status for row in rows()] == ["sent"] * 2 + ["deferred"] + ["queued"] * 2
    assert [row.attempts for row in rows()] == [1] * 3 + [0] * 2
    refused = rows()[2]
    assert refused.last_category == "rate_limited"
    assert f"{reply[:3]} " in refused.last_reply  # the provider's reply, as it came
    assert shown in refused.last_reply
    paused_until = live_row().paused_until
    assert before < paused_until <= before + timedelta(seconds=600)
    assert paused_until > timezone.now() + timedelta(seconds=590)
    # A drain runs when the pause ends at the latest (an earlier one finds it paused and
    # asks for one at its end, as django-q2 drops a schedule that ran).
    assert Schedule.objects.get(name=queue.RETRY_SCHEDULE).next_run <= paused_until
    Schedule.objects.filter(name=queue.RETRY_SCHEDULE).delete()
    assert not AlertState.objects.filter(active=True).exists()  # a pause is no failure
    sessions = server.sessions

    # While paused nothing is tried, not even a connection.
    assert outbox.drain().attempted == 0
    assert server.sessions == sessions
    assert Schedule.objects.get(name=queue.RETRY_SCHEDULE).next_run == paused_until

    # Ten minutes later (the stored pause is moved back, as time would) the provider
    # accepts again: the rest goes out, the refused one first, in order.
    server.limit_reply = None
    SmtpLiveConfiguration.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    result = outbox.drain()

    assert result.sent == 3
    assert [row.status for row in rows()] == ["sent"] * 5
    assert [m.message["Subject"] for m in server.messages] == ["M0", "M1", "M2", "M3", "M4"]
    assert live_row().paused_until is None


def test_the_status_page_shows_the_pause_and_when_it_ends(
    limited_server, settings, smtp_editor, client
):
    server = limited_server()
    configure(server)
    server.limit_reply = smtpservers.format_reply(IONOS)  # the provider's limit is reached
    send(2)
    paused_until = live_row().paused_until
    assert paused_until is not None
    client.force_login(german(smtp_editor))

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()
    page = client.get(edit_url()).content.decode()

    clock = timezone.localtime(paused_until).strftime("%H:%M")
    expected = f"Versand pausiert bis {clock} – der Anbieter begrenzt die Anzahl E-Mails"  # noqa: RUF001 (the German dash)
    assert data["sending_note"].startswith(expected)
    assert "Mail send limit exceeded" in data["sending_note"]  # the provider's reply
    assert data["sending_state"] == "paused"
    assert data["paused_until"] == paused_until.isoformat()
    assert data["alerts"] == []
    assert data["action"] == (
        "SMTP-Verbindung erfolgreich. Der Versand ist wegen des Versandlimits des "
        "Anbieters pausiert."
    )
    assert expected in page
    assert "Aktiviert, pausiert wegen des Versandlimits des Anbieters" in page


def test_pacing_claims_no_more_than_the_limit_allows_in_its_window(limited_server):
    server = limited_server()
    configure(server, enabled=None, send_limit="3", send_limit_period="minute")
    send(5)
    assert SmtpSettings.load().send_rate == (3, 60)

    with committed():
        submit(port=str(server.port), send_limit="3", send_limit_period="minute")

    assert [row.status for row in rows()] == ["sent"] * 3 + ["queued"] * 2
    assert len(server.messages) == 3
    # The window is used up: nothing is claimed, a drain waits for the first slot.
    assert outbox.drain().attempted == 0
    first_sent = min(row.sent_at for row in rows() if row.sent_at)
    next_run = Schedule.objects.get(name=queue.RETRY_SCHEDULE).next_run
    assert next_run == first_sent + timedelta(seconds=60)

    # A minute later (the sent rows leave the window) the rest goes out.
    OutboxMessage.objects.filter(status="sent").update(
        sent_at=timezone.now() - timedelta(seconds=61)
    )
    assert outbox.drain().sent == 2
    assert len(server.messages) == 5


def test_pacing_counts_only_this_mailbox_and_holds_without_a_limit(limited_server):
    server = limited_server()
    configure(server, enabled=None)
    send(4)
    OutboxMessage.objects.create(  # sent just now through another mailbox
        status="sent", message_id="<x@y>", sent_at=timezone.now(), sent_via="other @ host:587"
    )
    with committed():
        submit(port=str(server.port))  # no limit: all four go out
    assert len(server.messages) == 4


def test_the_limit_is_filled_from_the_preset_without_javascript(server):
    form = submit(
        port=None, host="", provider="microsoft365", send_limit="", auth_method="password"
    )
    assert not form.errors, form.errors
    smtp_settings = SmtpSettings.load()
    assert (smtp_settings.send_limit, smtp_settings.send_limit_period) == (30, "minute")
    presets = providers.as_json_data()
    assert presets["ionos"]["fields"]["send_limit"] == 500
    assert presets["gmail"]["fields"]["send_limit"] is None  # none documented: cleared


def test_the_limit_field_is_on_the_page_with_its_help(server, smtp_editor, client):
    configure(server)
    client.force_login(german(smtp_editor))
    page = client.get(edit_url()).content.decode()
    assert 'name="send_limit"' in page
    assert 'name="send_limit_period"' in page
    assert "Max. E-Mails" in page  # the label (Django capitalises it)
    assert "pro Stunde" in page and "pro Minute" in page
    assert "leer: keine Begrenzung" in page


def test_the_connection_test_shows_a_rate_limit_as_its_own_category(
    limited_server, smtp_editor, client
):
    """Before: a ``451 … rate limit`` at MAIL FROM during the setup read "sender refused"."""
    server = limited_server(limit_reply="451 4.7.0 Rate limit exceeded", limit_after=0)
    with translation.override("de"):
        submit(user=smtp_editor, port=str(server.port))
    client.force_login(german(smtp_editor))

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()
    page = client.get(edit_url()).content.decode()

    assert data["status"] == "failed"
    assert data["category"] == "rate_limited"
    assert data["category_label"] == "Versandlimit erreicht"
    assert data["explanation"].startswith("Der Anbieter begrenzt, wie viele E-Mails")
    assert "von selbst versendet" in data["fix"]
    assert data["reply"].startswith("451 4.7.0 Rate limit exceeded")
    assert "Versandlimit erreicht" in page


def test_a_pause_from_the_live_configuration_reaches_every_worker(limited_server):
    """The pause is stored on the live configuration: a worker that loads it later
    claims nothing either (several workers, one pause)."""
    server = limited_server()
    configure(server)
    server.limit_reply = smtpservers.format_reply(IONOS)
    send(1)
    assert live.load().paused_until == live_row().paused_until
    assert outbox.deliver(sending=live.load()).attempted == 0


def test_sending_in_the_request_keeps_to_the_pause_and_the_limit(limited_server, settings):
    """``ICARUS_SMTP_SEND_IN_REQUEST``: the request sends only what the limit allows;
    the rest waits in the outbox for a worker, as while paused."""
    server = limited_server()
    configure(server, send_limit="2", send_limit_period="hour")
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True
    send(3)
    assert [row.status for row in rows()] == ["sent", "sent", "queued"]
    assert [row.attempts for row in rows()] == [1, 1, 0]

    SmtpLiveConfiguration.objects.update(
        paused_until=timezone.now() + timedelta(minutes=5), pause_reply="450 Mail send limit"
    )
    SmtpSettings.objects.update(send_limit=None)
    send(1)
    assert len(server.messages) == 2  # paused: the request did not even connect
    assert rows()[-1].status == "queued"


@pytest.mark.django_db(transaction=True)
def test_several_workers_together_send_no_more_than_the_limit(limited_server):
    server = limited_server()
    configure(server, enabled=None, send_limit="3", send_limit_period="minute")
    send(8)
    SmtpSettings.objects.update(enabled=True)
    OutboxMessage.objects.update(status="queued")
    barrier = threading.Barrier(4)
    errors = []

    def work():
        try:
            barrier.wait(timeout=10)
            outbox.deliver(sending=live.load())
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(server.messages) == 3
    assert sorted(row.status for row in rows()) == ["queued"] * 5 + ["sent"] * 3


def test_the_health_check_hearing_the_limit_pauses_without_a_failure_or_alert(limited_server):
    server = limited_server()
    smtp_settings = configure(server)
    events = smtp_settings.events.count()
    server.limit_reply = smtpservers.format_reply(RATE)  # at MAIL FROM, as the probe asks

    assert periodic.health_check()["status"] == "complete"

    assert live_row().paused_until > timezone.now()
    assert live_row().pause_reply.startswith("451 4.7.0 Rate limit exceeded")
    assert SmtpSettings.load().events.count() == events  # no "failed" row in the history
    assert SmtpSettings.load().status == "complete"
    assert not AlertState.objects.filter(active=True).exists()


@pytest.fixture
def postfix_limited(ca, trust):
    """Postfix + Dovecot with anvil's message rate limit switched on for loopback."""
    mailservers.require(mailservers.POSTFIX_MASTER, mailservers.DOVECOT)
    main_cf = """\
        smtpd_client_event_limit_exceptions =
        smtpd_client_message_rate_limit = 3
        anvil_rate_time_unit = 60s
    """
    with mailservers.PostfixDovecot({MAILBOX: UMLAUT_PASSWORD}, ca, main_cf=main_cf) as server:
        trust(server.port)
        yield server


def test_postfix_anvil_rate_limit_pauses_the_outbox(postfix_limited, smtp_editor):
    form = submit(
        user=smtp_editor, port=str(postfix_limited.port), password=UMLAUT_PASSWORD, enabled=None
    )
    assert not form.errors, form.errors
    assert SmtpSettings.load().live_config is not None  # the test's MAIL FROM counts too
    send(5)
    SmtpSettings.objects.update(enabled=True)
    OutboxMessage.objects.update(status="queued")

    outbox.drain()

    statuses = [row.status for row in rows()]
    refused = rows()[statuses.index("deferred")]
    assert refused.last_category == "rate_limited"
    assert refused.last_reply.startswith("450 4.7.1 Error: too much mail from 127.0.0.1")
    after = statuses[statuses.index("deferred") + 1 :]
    assert set(after) == {"queued"} and len(after) >= 2  # untried, back unchanged
    assert set(statuses[: statuses.index("deferred")]) == {"sent"}
    assert live_row().paused_until > timezone.now()
    assert outbox.drain().attempted == 0  # paused
