"""Self-test of the local SMTP test servers in ``tests/smtpservers.py`` (plain smtplib).

Runs without Django: ``python -m pytest tests/test_smtpservers.py -p no:django``.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
import threading
import time
from email.message import EmailMessage

import pytest

from tests.smtpservers import (
    DripServer,
    ScriptedServer,
    SilentServer,
    SmtpServer,
    TestCA,
    default_ca,
    format_reply,
)

USER = "mailbox@example.com"
PASSWORD = "secret"
GMAIL_534 = (
    "534-5.7.9 Application-specific password required. Learn more at "
    "https://support.google.com/mail/?p=InvalidSecondFactor"
)


def make_message(subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = USER
    msg["To"] = "someone@example.org"
    msg["Subject"] = subject
    msg.set_content("Grüße aus dem Test.\n.leading dot line\n")
    return msg


def client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=default_ca().ca_file)


def test_starttls_login_and_send():
    with SmtpServer("starttls") as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert not client.has_extn("auth")  # only after STARTTLS
            client.starttls(context=client_context())
            client.ehlo()
            assert client.esmtp_features["auth"].strip() == "LOGIN"
            client.login(USER, PASSWORD)
            client.send_message(make_message("starttls"))
        (received,) = server.wait_for_messages(1)
        assert received.mail_from == USER
        assert received.rcpt_tos == ["someone@example.org"]
        assert received.message["Subject"] == "starttls"
        assert ".leading dot line" in received.message.get_content()
        assert received["data"] == received.data and received.tls
        assert received.login == USER
        assert server.sessions == 1
        assert server.auth_attempts == 1
        # recorded exactly as sent (smtplib sends lowercase "ehlo" and "STARTTLS")
        assert [c.upper() for c in server.commands[:2]] == ["EHLO [127.0.0.1]", "STARTTLS"]
        assert any(c.upper().startswith("AUTH LOGIN ") for c in server.commands)
        assert any(c.lower().startswith(f"mail from:<{USER}>") for c in server.commands)
        # the credentials only ever travelled inside TLS
        secret = base64.b64encode(PASSWORD.encode())
        assert secret in server.raw_transcript
        assert secret not in server.plaintext_transcript
        assert [c.upper() for c in server.plaintext_commands] == ["EHLO [127.0.0.1]", "STARTTLS"]


def test_starttls_server_refuses_auth_and_mail_before_tls():
    with SmtpServer("starttls") as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            code, _ = client.docmd("AUTH", "LOGIN")
            assert code == 530
            code, _ = client.docmd("MAIL", f"FROM:<{USER}>")
            assert code == 530
        assert server.auth_attempts == 1  # reached the server, was refused


def test_implicit_tls_login_send_and_restart():
    with SmtpServer("ssl") as server:
        with smtplib.SMTP_SSL(
            server.host, server.port, timeout=10, context=client_context()
        ) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            client.login(USER, PASSWORD)
            client.send_message(make_message("implicit"))
        assert server.wait_for_messages(1)[0].message["Subject"] == "implicit"
        assert server.plaintext_transcript == b""
        port = server.port
        server.stop()
        with pytest.raises(OSError):
            smtplib.SMTP_SSL(server.host, port, timeout=5, context=client_context())
        server.start()
        assert server.port == port
        with smtplib.SMTP_SSL(server.host, port, timeout=10, context=client_context()) as client:
            client.login(USER, PASSWORD)
            client.send_message(make_message("after restart"))
        assert [m.message["Subject"] for m in server.wait_for_messages(2)] == [
            "implicit",
            "after restart",
        ]


def test_wrong_password_is_one_attempt_with_535():
    with SmtpServer("starttls") as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=client_context())
            with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
                client.login(USER, "wrong")
        assert excinfo.value.smtp_code == 535
        assert excinfo.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        assert server.auth_attempts == 1
        assert server.messages == []


def test_auth_reply_replays_provider_reply():
    with SmtpServer("ssl", auth_reply=GMAIL_534) as server:
        with (
            smtplib.SMTP_SSL(
                server.host, server.port, timeout=10, context=client_context()
            ) as client,
            pytest.raises(smtplib.SMTPAuthenticationError) as excinfo,
        ):
            client.login(USER, PASSWORD)  # even the right password
        assert excinfo.value.smtp_code == 534
        assert excinfo.value.smtp_error == GMAIL_534[4:].encode()
        assert server.auth_attempts == 1


def test_auth_reply_multiline():
    reply = (
        "534-5.7.9 Application-specific password required.\n"
        "534 5.7.9 Learn more at https://support.google.com/mail/?p=InvalidSecondFactor"
    )
    assert format_reply(reply) == reply.replace("\n", "\r\n")
    with SmtpServer("starttls", auth_reply=reply) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=client_context())
            with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
                client.login(USER, PASSWORD)
        assert excinfo.value.smtp_code == 534
        assert excinfo.value.smtp_error == (
            b"5.7.9 Application-specific password required.\n"
            b"5.7.9 Learn more at https://support.google.com/mail/?p=InvalidSecondFactor"
        )


def test_mail_from_reply_refuses_sender():
    with SmtpServer(
        "starttls", mail_from_reply="550 5.7.1 Sender address is not allowed", rcpt_reply=None
    ) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=client_context())
            client.login(USER, PASSWORD)
            with pytest.raises(smtplib.SMTPSenderRefused) as excinfo:
                client.send_message(make_message())
        assert excinfo.value.smtp_code == 550
        assert excinfo.value.smtp_error == b"5.7.1 Sender address is not allowed"
        assert server.messages == []


def test_rcpt_reply_refuses_recipient():
    with SmtpServer("ssl", rcpt_reply="550 5.1.1 No such user") as server:
        with smtplib.SMTP_SSL(
            server.host, server.port, timeout=10, context=client_context()
        ) as client:
            client.login(USER, PASSWORD)
            with pytest.raises(smtplib.SMTPRecipientsRefused) as excinfo:
                client.send_message(make_message())
        assert excinfo.value.recipients == {"someone@example.org": (550, b"5.1.1 No such user")}


def test_plain_server_without_starttls_offers_auth_in_clear():
    with SmtpServer("plain", offer_starttls=False) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            assert client.has_extn("auth")
        assert not any(c.upper().startswith("AUTH") for c in server.commands)
        assert server.auth_attempts == 0


def test_untrusted_ca_fails_verification():
    other = TestCA()
    try:
        with SmtpServer("ssl", ca=other) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                smtplib.SMTP_SSL(server.host, server.port, timeout=10, context=client_context())
            # sanity: the CA it was issued by does verify it
            with smtplib.SMTP_SSL(
                server.host, server.port, timeout=10, context=other.client_context()
            ) as client:
                client.noop()
    finally:
        other.cleanup()


def test_wrong_hostname_fails_verification():
    context = default_ca().server_context("wrong.example")
    with (
        SmtpServer("starttls", server_context=context) as server,
        smtplib.SMTP("localhost", server.port, timeout=10) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=client_context())


def test_silent_server_times_out_quickly():
    with SilentServer() as server:
        started = time.monotonic()
        with pytest.raises((smtplib.SMTPServerDisconnected, TimeoutError)):
            smtplib.SMTP(server.host, server.port, timeout=1)
        assert time.monotonic() - started < 3
        assert server.sessions == 1


def test_drip_server_defeats_per_read_timeout():
    outcome: dict[str, object] = {}

    def connect(port: int) -> None:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=1)
            outcome["result"] = "connected"
        except Exception as exc:  # any outcome is recorded
            outcome["result"] = exc

    server = DripServer(interval=0.2).start()
    try:
        thread = threading.Thread(target=connect, args=(server.port,), daemon=True)
        thread.start()
        thread.join(3)
        assert thread.is_alive(), f"client finished early: {outcome}"
    finally:
        server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome["result"], smtplib.SMTPServerDisconnected | OSError)


def test_scripted_server_replays_with_starttls_upgrade():
    script = [
        "220 smtp.example.net ESMTP scripted",
        "250-smtp.example.net\n250-STARTTLS\n250 8BITMIME",
        "220 2.0.0 Ready to start TLS",
        "250-smtp.example.net\n250 AUTH LOGIN",
        "334 VXNlcm5hbWU6",
        GMAIL_534.replace("534-", "534 ", 1),
    ]
    context = default_ca().server_context()
    with ScriptedServer(script, tls_context=context) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=client_context())
            with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
                client.login(USER, PASSWORD)
            # the script is exhausted: the server closes the connection
        assert excinfo.value.smtp_code == 534
        assert server.commands[1] == "STARTTLS"
        assert server.commands[3].startswith("AUTH LOGIN")
        assert server.sessions == 1


def test_scripted_server_implicit_tls_and_data():
    script = [
        "220 scripted",
        "250 scripted",
        "250 2.1.0 OK",
        "250 2.1.5 OK",
        "354 Go ahead",
        "250 2.0.0 OK queued",
        "221 2.0.0 Bye",
    ]
    context = default_ca().server_context()
    with (
        ScriptedServer(script, tls_context=context, implicit_tls=True) as server,
        smtplib.SMTP_SSL(server.host, server.port, timeout=10, context=client_context()) as client,
    ):
        client.sendmail(USER, ["a@example.org"], b"Subject: x\r\n\r\n.dot\r\n")
    assert server.data_blocks == [b"Subject: x\r\n\r\n.dot\r\n"]
    assert [c.split(" ")[0].upper() for c in server.commands] == [
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "QUIT",
    ]
