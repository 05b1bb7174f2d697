"""Against the servers German hosters run (issue 10.1, issue 13.13): Postfix + Dovecot
SASL and Exim from Debian, on loopback with configurations of their own
(``tests/mailservers.py``; installed by ``.ci/install-mailservers``)."""

import time

import pytest
from django.urls import reverse
from django.utils import translation

from tests import mailservers
from tests.conftest import MAILBOX, REFUSED_SENDER, UMLAUT_PASSWORD
from tests.utils import XHR, german, submit
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.admin import report
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.smtp import failures, transport


def probe(server, user=MAILBOX, password=UMLAUT_PASSWORD):
    return transport.probe(transport.Mailbox("localhost", server.port, user, password))


def refusal(server, **kwargs):
    with pytest.raises(Exception) as caught:
        probe(server, **kwargs)
    return failures.classify(caught.value, secrets=[kwargs.get("password", "")])


def wait_for_log(server, text, timeout=10):
    """Postfix and Exim write their log a moment after the session ended."""
    deadline = time.monotonic() + timeout
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.log()


@pytest.mark.django_db
def test_postfix_dovecot_setup_completes_with_an_umlaut_password(postfix, smtp_editor):
    form = submit(user=smtp_editor, port=str(postfix.port), password=UMLAUT_PASSWORD)

    assert not form.errors
    data = report.build(SmtpSettings.load())
    assert (data["status"], data["category"]) == ("complete", "")
    log = wait_for_log(postfix, " auth=")
    assert "auth=1 " in log and "quit=1" in log  # one login, a polite goodbye


@pytest.fixture
def unchunked(request, ca, trust):
    """Postfix or Exim (``request.param``) configured not to offer CHUNKING: PIPELINING
    alone, as older versions and some providers offer it."""
    users = {MAILBOX: UMLAUT_PASSWORD}
    if request.param == "postfix":
        mailservers.require(mailservers.POSTFIX_MASTER, mailservers.DOVECOT)
        server = mailservers.PostfixDovecot(users, ca, "smtpd_discard_ehlo_keywords = chunking\n")
    else:
        mailservers.require(mailservers.EXIM)
        server = mailservers.Exim(users, ca, chunking=False)
    with server:
        trust(server.port)
        yield server


def queue_three(server, editor):
    """Settings for ``server``; three messages of two recipients each, due, a line
    starting with a dot in each."""
    assert not submit(user=editor, port=str(server.port), password=UMLAUT_PASSWORD).errors
    outbox.accept(
        [
            outbox.Envelope(
                f"<p{i}@test>",
                f"P{i}",
                "shop@dropzone.example",
                False,
                [f"a{i}@example.com", f"b{i}@example.com"],
                f"Subject: P{i}\r\nMessage-ID: <p{i}@test>\r\n\r\n.Punkt {i}\r\n".encode(),
            )
            for i in range(3)
        ],
        held=False,
    )


def count_writes(monkeypatch):
    """The client's writes, as they go out (the real ``send``, counted)."""
    writes = []
    send = transport.SMTP.send

    def counted(client, data):
        writes.append(data if isinstance(data, bytes) else data.encode())
        return send(client, data)

    monkeypatch.setattr(transport.SMTP, "send", counted)
    return writes


@pytest.mark.django_db
@pytest.mark.parametrize("unchunked", ["postfix", "exim"], indirect=True)
def test_a_group_of_messages_goes_pipelined(unchunked, smtp_editor, monkeypatch):
    """Postfix and Exim without CHUNKING, with PIPELINING: each message's MAIL, RCPT and
    DATA go in one write (the next one's with the previous content), and the server
    takes them all."""
    server, mta = unchunked, type(unchunked).__name__
    queue_three(server, smtp_editor)
    writes = count_writes(monkeypatch)

    assert outbox.drain().sent == 3

    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    commands = [write for write in writes if b"MAIL FROM:" in write]
    assert len(commands) == 3
    assert all(write.count(b"RCPT TO:") == 2 and write.endswith(b"DATA\r\n") for write in commands)
    assert sum(b"\r\n.\r\nMAIL FROM:" in write for write in commands) == 2
    assert not any(b"BDAT" in write for write in writes)
    if mta == "PostfixDovecot":
        log = wait_for_log(server, " data=3")
        assert "mail=3 rcpt=6 data=3" in log
        assert "improper command pipelining" not in log
    else:
        log = wait_for_log(server, "id=p2@test")
        assert sum(f"<= {MAILBOX} " in line for line in log.splitlines()) == 3
        assert "synchronization error" not in log


@pytest.mark.django_db
@pytest.mark.parametrize("mta", ["postfix", "exim"])
def test_a_group_of_messages_goes_chunked(mta, request, smtp_editor, monkeypatch):
    """Postfix and Exim offer PIPELINING and CHUNKING: the three messages go out as
    ``BDAT <size> LAST`` in one write, without waiting for a reply, and arrive."""
    server = request.getfixturevalue(mta)
    queue_three(server, smtp_editor)
    writes = count_writes(monkeypatch)

    assert outbox.drain().sent == 3

    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    [write] = [write for write in writes if b"MAIL FROM:" in write]
    assert write.count(b"RCPT TO:") == 6 and write.count(b" LAST\r\n") == 3
    assert b"\r\n.Punkt 0\r\n" in write  # no dot-stuffing with BDAT
    assert b"DATA\r\n" not in write
    if mta == "postfix":
        log = wait_for_log(server, " bdat=3")
        assert "mail=3 rcpt=6 bdat=3" in log
        assert "improper command pipelining" not in log
    else:
        log = wait_for_log(server, "id=p2@test")
        assert sum(f"<= {MAILBOX} " in line for line in log.splitlines()) == 3
        assert "synchronization error" not in log


def test_postfix_dovecot_wrong_password_is_one_auth_attempt(postfix):
    failure = refusal(postfix, password="Fallschirm-Strasse-aou")

    assert failure.category == "auth"
    assert failure.reply.startswith("535 5.7.8")
    log = wait_for_log(postfix, " auth=")
    # Postfix counts AUTH commands per session: "auth=0/1" is one attempt, refused.
    assert "auth=0/1" in log and "quit=1" in log


def test_exim_logs_in_with_an_umlaut_password(exim):
    assert probe(exim) > 0


def test_exim_wrong_password_is_one_auth_attempt(exim):
    failure = refusal(exim, password="Fallschirm-Strasse-aou")

    assert failure.category == "auth"
    wait_for_log(exim, "authenticator failed")
    assert exim.mainlog().count("authenticator failed") == 1


@pytest.mark.django_db
def test_exim_multi_line_refusal_is_one_readable_text(exim, smtp_editor, client):
    """Exim repeats the enhanced status code on every line of a multi-line reply."""
    with translation.override("de"):
        submit(
            user=smtp_editor, port=str(exim.port), email=REFUSED_SENDER, password=UMLAUT_PASSWORD
        )
    client.force_login(german(smtp_editor))

    data = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).json()

    assert data["category"] == "sender_rejected"
    assert data["reply"] == (
        "550 5.7.1 Sender address rejected by local policy; "
        "This mailbox may not send through this server; Contact the postmaster"
    )


def test_missing_servers_fail_in_ci_instead_of_skipping(monkeypatch):
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception, match="install-mailservers"):
        mailservers.require("/nonexistent/exim4")


def test_missing_servers_skip_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception):
        mailservers.require("/nonexistent/exim4")
