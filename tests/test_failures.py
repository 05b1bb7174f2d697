"""Every provider reply from providers.md gets its category; the raw reply is kept."""

import os
import smtplib
import socket
import ssl

import pytest

from wagtail_icarus_smtp.smtp import failures, transport

PROVIDER_REPLIES = [
    # (exception class, code, reply text, category)
    (
        smtplib.SMTPAuthenticationError,
        535,
        "5.7.8 Username and Password not accepted. "
        "Learn more at https://support.google.com/mail/?p=BadCredentials",
        "auth",
    ),
    (
        smtplib.SMTPAuthenticationError,
        535,
        "5.7.3 Authentication unsuccessful [AM0PR01CA0001.PROD.OUTLOOK.COM]",
        "auth",
    ),
    (
        smtplib.SMTPAuthenticationError,
        535,
        "Authentication failure: SMTP AUTH failed with the remote server",
        "auth",
    ),
    (
        smtplib.SMTPAuthenticationError,
        534,
        "5.7.9 Application-specific password required. "
        "Learn more at https://support.google.com/mail/?p=InvalidSecondFactor",
        "app_password_required",
    ),
    (
        smtplib.SMTPAuthenticationError,
        535,
        "5.7.139 Authentication unsuccessful, "
        "SmtpClientAuthentication is disabled for the Tenant. Visit "
        "https://aka.ms/smtp_auth_disabled for more information.",
        "auth_disabled",
    ),
    (
        smtplib.SMTPAuthenticationError,
        535,
        "5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        "auth_disabled",
    ),
    (
        smtplib.SMTPSenderRefused,
        550,
        "5.7.30 Basic authentication is not supported for Client Submission.",
        "auth_disabled",
    ),
    (
        smtplib.SMTPResponseException,
        530,
        "5.7.0 Must issue a STARTTLS command first.",
        "tls_unavailable",
    ),
    (
        smtplib.SMTPResponseException,
        451,
        "5.7.3 STARTTLS is required to send mail",
        "tls_unavailable",
    ),
    (
        smtplib.SMTPAuthenticationError,
        504,
        "5.7.4 Unrecognized authentication type",
        "auth_disabled",
    ),
    (smtplib.SMTPSenderRefused, 550, "Sender address is not allowed", "sender_rejected"),
    (
        smtplib.SMTPSenderRefused,
        550,
        "Forbidden domain 'example.org' in Envelope-From (B-EFROM-STRATO)",
        "sender_rejected",
    ),
    (
        smtplib.SMTPSenderRefused,
        553,
        "5.7.1 <a@b.example>: Sender address rejected",
        "sender_rejected",
    ),
    (smtplib.SMTPResponseException, 554, "5.0.0 Something unusual", "protocol"),
    # A provider's temporary send limit (issue 11.6).
    (
        smtplib.SMTPSenderRefused,
        450,
        "Requested mail action not taken: mailbox unavailable\nMail send limit exceeded.",
        "rate_limited",
    ),
    (smtplib.SMTPSenderRefused, 451, "4.7.0 Rate limit exceeded, try again later", "rate_limited"),
    (smtplib.SMTPSenderRefused, 451, "Rate limit reached for this mailbox", "rate_limited"),
    (
        smtplib.SMTPSenderRefused,
        421,
        "4.7.0 Try again later, closing connection. (MAIL)",
        "rate_limited",
    ),
    (
        smtplib.SMTPDataError,
        554,
        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
        "process message due to a permanent exception",
        "rate_limited",
    ),
    # Not ours: a session limit (a new connection helps) and the recipient's own rate.
    (
        smtplib.SMTPResponseException,
        421,
        "4.7.0 Too many messages in this session, closing connection",
        "protocol",
    ),
    (
        smtplib.SMTPResponseException,
        450,
        "4.2.1 The user you are trying to contact is receiving mail at a rate that "
        "prevents additional messages from being delivered.",
        "protocol",
    ),
]


def make_error(cls, code, text):
    if cls is smtplib.SMTPSenderRefused:
        return cls(code, text.encode(), "a@b.example")
    return cls(code, text.encode())


@pytest.mark.parametrize(("cls", "code", "text", "category"), PROVIDER_REPLIES)
def test_provider_replies(cls, code, text, category):
    failure = failures.classify(make_error(cls, code, text))

    assert failure.category == category
    assert failure.reply.startswith(f"{code} ")
    assert text.split()[0] in failure.reply


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (socket.gaierror(-2, "Name or service not known"), "connection"),
        (ConnectionRefusedError(111, "Connection refused"), "connection"),
        (OSError(101, "Network is unreachable"), "connection"),
        (transport.DeadlineExceeded("the SMTP deadline has passed"), "timeout"),
        (TimeoutError("timed out"), "timeout"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls_handshake"),
        (transport.TlsUnavailable(reply="250-localhost"), "tls_unavailable"),
    ],
)
def test_errors_without_a_reply(error, category):
    assert failures.classify(error).category == category


def test_a_disconnect_caused_by_the_deadline_is_a_timeout():
    try:
        try:
            raise transport.DeadlineExceeded("the SMTP deadline has passed")
        except OSError as inner:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed") from inner
    except smtplib.SMTPServerDisconnected as error:
        assert failures.classify(error).category == "timeout"


def test_secrets_are_masked_in_replies():
    import base64

    secret = "geheim-123"
    error = smtplib.SMTPAuthenticationError(
        535, f"5.7.8 bad {secret} {base64.b64encode(secret.encode()).decode()}".encode()
    )

    reply = failures.classify(error, secrets=[secret]).reply

    assert secret not in reply
    assert base64.b64encode(secret.encode()).decode() not in reply
    assert reply.count("****") == 2


def test_a_replaced_ca_file_is_loaded_again(settings, ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    settings.ICARUS_SMTP_CA_FILE = str(ca_file)
    first = transport.tls_context()
    assert transport.tls_context() is first  # built once, reused

    stat = ca_file.stat()
    os.utime(ca_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert transport.tls_context() is not first
