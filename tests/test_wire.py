"""The SMTP conversation as real servers see it (issue 10.1, issue 13.11-14), against
the local aiosmtpd servers: UTF-8 logins, one AUTH attempt, international mailbox
domains, a 421 in the middle of a batch, multi-line refusals, QUIT on error paths."""

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from tests import smtpservers
from tests.conftest import MAILBOX, PASSWORD
from tests.utils import XHR, committed, configure, edit_url, german, submit
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import DeliveryAttempt, OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.setup import live
from wagtail_icarus_smtp.smtp import failures, transport

UMLAUT = "Fallschirm-Straße-äöü"
IDN_MAILBOX = "info@müller-sprung.de"
IDN_LOGIN = "info@xn--mller-sprung-dlb.de"  # the login is always the ASCII form
DEADLINE = 10


def verbs(server):
    return [command.split(" ", 1)[0].upper() for command in server.commands]


def lowered(server):
    return [command.lower() for command in server.commands]


def probe(server, user=MAILBOX, password=PASSWORD):
    return transport.probe(transport.Mailbox("localhost", server.port, user, password))


@pytest.mark.parametrize("mechanisms", [None, ("PLAIN",), ("LOGIN",)])
def test_an_umlaut_password_logs_in_with_one_auth(start_server, trust, mechanisms):
    server = start_server(users={MAILBOX: UMLAUT}, auth_mechanisms=mechanisms)
    trust(server.port)

    probe(server, password=UMLAUT)

    auth = [command for command in server.commands if command.upper().startswith("AUTH")]
    assert len(auth) == 1
    expected = "PLAIN" if mechanisms in (None, ("PLAIN",)) else "LOGIN"
    assert auth[0].split()[1].upper() == expected  # PLAIN is preferred when offered
    assert verbs(server)[-1] == "QUIT"


def test_a_wrong_password_is_one_auth_attempt_then_quit(start_server, trust):
    server = start_server(auth_mechanisms=None)  # PLAIN and LOGIN offered
    trust(server.port)

    with pytest.raises(Exception) as caught:
        probe(server, password="wrong")

    assert failures.classify(caught.value).category == "auth"
    assert server.auth_attempts == 1  # smtplib tried PLAIN, then LOGIN: two
    assert server.sessions == 1
    assert verbs(server)[-1] == "QUIT"  # the session ended politely


def test_no_starttls_is_answered_with_quit(start_server, trust, ca):
    server = start_server(
        cls=smtpservers.ScriptedServer,
        script=["220 plain.example ESMTP", "250-plain.example\n250 AUTH PLAIN", "221 Bye"],
    )
    trust(server.port)

    with pytest.raises(transport.TlsUnavailable):
        probe(server)

    assert [c.split(" ")[0].upper() for c in server.commands] == ["EHLO", "QUIT"]


def test_an_idn_mailbox_uses_smtputf8_where_offered(start_server, trust):
    server = start_server(users={IDN_LOGIN: PASSWORD}, smtputf8=True)
    trust(server.port)

    probe(server, user=IDN_MAILBOX)

    assert f"mail from:<{IDN_MAILBOX}> smtputf8" in lowered(server)
    assert f"rcpt to:<{IDN_MAILBOX}>" in lowered(server)


def test_an_idn_mailbox_is_written_in_idna_2008_elsewhere(start_server, trust):
    server = start_server(users={"info@xn--strae-oqa.de": PASSWORD})
    trust(server.port)

    probe(server, user="info@straße.de")

    # IDNA 2008 keeps the ß (Python's "idna" codec, IDNA 2003, would send strasse.de)
    assert "mail from:<info@xn--strae-oqa.de>" in lowered(server)


def test_a_local_part_beyond_ascii_without_smtputf8_is_refused_with_an_explanation(
    start_server, trust
):
    server = start_server(users={"jürgen@example.com": PASSWORD}, auth_mechanisms=None)
    trust(server.port)

    with pytest.raises(Exception) as caught:
        probe(server, user="jürgen@example.com")

    failure = failures.classify(caught.value)
    assert failure.category == "sender_rejected"
    assert "SMTPUTF8" in failure.reply and "jürgen@example.com" in failure.reply
    assert "MAIL" not in verbs(server)
    assert verbs(server)[-1] == "QUIT"


# -- sending -----------------------------------------------------------------------------


def send(count, recipients=1):
    messages = [
        EmailMessage(f"M{i}", "Text", None, [f"k{i}-{n}@example.com" for n in range(recipients)])
        for i in range(count)
    ]
    with committed():
        assert EmailBackend().send_messages(messages) == count


def rows():
    return list(OutboxMessage.objects.order_by("pk"))


@pytest.mark.django_db
@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_421_mid_batch_defers_the_rest_with_the_421(start_server, trust, settings, stage):
    server = start_server(end_after=1, end_at=stage)
    trust(server.port)
    configure(server, enabled=None)  # off: the rows wait, then go out as one batch
    send(3, recipients=2)
    server.clear()

    OutboxMessage.objects.update(status="queued")  # due now, all in one batch
    live_config = SmtpSettings.load().live_config

    result = outbox.deliver(sending=live.sending_for(live_config))

    assert [row.status for row in rows()] == ["sent", "deferred", "deferred"]
    assert result.sent == 1 and result.deferred == 2
    for row in rows()[1:]:
        assert row.last_reply.startswith("421 4.7.0 Too many messages")
        assert all(entry["status"] != "sent" for entry in row.recipient_status.values())
    replies = DeliveryAttempt.objects.values_list("reply", flat=True)
    assert not any("connect()" in reply for reply in replies)
    assert server.sessions == 1
    assert verbs(server)[-1] != "QUIT"  # nothing more is said on an ended session


@pytest.mark.django_db
def test_a_multi_line_refusal_reads_as_one_text_with_the_code_once(start_server, trust):
    server = start_server(
        data_reply=(
            "550-5.7.1 Message rejected as spam\n"
            "550-5.7.1 Your message looked like bulk mail\n"
            "550 5.7.1 See https://postmaster.example/550"
        )
    )
    trust(server.port)
    configure(server)

    send(1)

    row = rows()[0]
    assert row.status == "failed"
    assert row.last_reply == (
        "550 5.7.1 Message rejected as spam; Your message looked like bulk mail; "
        "See https://postmaster.example/550"
    )


# -- what editors are shown --------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_connection_is_explained_not_shown_as_the_servers_reply(
    trust, smtp_editor, client
):
    port = smtpservers.free_port()  # nothing listens there
    trust(port)
    with translation.override("de"):
        submit(user=smtp_editor, port=str(port))
    client.force_login(german(smtp_editor))

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()
    page = client.get(edit_url()).content.decode()

    assert data["category"] == "connection"
    assert data["reply"] == ""
    assert data["detail"].startswith("ConnectionRefusedError: [Errno 111]")
    assert "Der Mailserver war nicht erreichbar" in page  # the category's explanation
    failure_box = page[page.index('data-field="failure"') :]
    failure_box = failure_box[: failure_box.index("</div>")]
    reply_row = failure_box[failure_box.index('data-field="reply_row"') :]
    assert reply_row.startswith('data-field="reply_row" hidden>')
    assert "<summary>Technische Details</summary>" in failure_box
    assert "ConnectionRefusedError" in failure_box.split("<summary>", 1)[1]


@pytest.mark.django_db
def test_a_domain_that_is_no_international_name_is_a_field_error(smtp_editor):
    with translation.override("de"):
        form = submit(user=smtp_editor, email="info@☃.example")  # IDNA 2003 took it
        errors = str(form.errors["email"])

    assert "Die Domain nach dem @ ist kein gültiger internationaler Domainname" in errors


@pytest.mark.django_db
def test_an_idn_mailbox_sends_with_smtputf8_and_an_ascii_from_header(start_server, trust):
    server = start_server(users={"info@xn--strae-oqa.de": PASSWORD}, smtputf8=True)
    trust(server.port)
    configure(server, email="info@straße.de")

    send(1)

    [received] = server.wait_for_messages(1)
    assert received.mail_from == "info@straße.de"
    assert "mail from:<info@straße.de> smtputf8" in lowered(server)
    assert received.message["From"].addresses[0].addr_spec == "info@xn--strae-oqa.de"
    assert [row.status for row in rows()] == ["sent"]


def test_an_echoed_utf8_login_is_masked(start_server, trust, ca):
    """A server that echoes the AUTH PLAIN blob: the blob is base64 of UTF-8 now."""
    server = start_server(
        cls=smtpservers.HostileServer,
        tls_context=ca.server_context(),
        auth=smtpservers.echo_credentials(),
    )
    trust(server.port)

    with pytest.raises(Exception) as caught:
        probe(server, password=UMLAUT)
    failure = failures.classify(caught.value, secrets=[UMLAUT])

    blob = next(command for command in server.commands if command.upper().startswith("AUTH"))
    assert blob.split()[-1] not in failure.reply + str(caught.value)
    assert failure.reply == "535 5.7.8 bad credentials ****"


@pytest.mark.django_db
def test_the_status_command_gives_operators_the_technical_detail(trust, smtp_editor, capsys):
    port = smtpservers.free_port()  # nothing listens there
    trust(port)
    submit(user=smtp_editor, port=str(port))

    with pytest.raises(SystemExit):
        call_command("icarus_smtp_status")
    output = capsys.readouterr().out

    assert "Server reply:" not in output
    assert "Details: ConnectionRefusedError: [Errno 111]" in output
