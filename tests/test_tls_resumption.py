"""TLS context built once, sessions resumed: the speed-up over the stock backend."""

from tests.conftest import MAILBOX, PASSWORD
from wagtail_icarus_smtp import transport


def open_and_close(port):
    mailbox = transport.Mailbox("localhost", port, MAILBOX, PASSWORD)
    client = transport.connect(mailbox, transport.Deadline(5))
    reused = client.sock.session_reused
    transport.quit_quietly(client)
    return reused


def test_the_second_connection_resumes_the_tls_session(server):
    assert open_and_close(server.port) is False
    assert open_and_close(server.port) is True
    assert server.auth_attempts == 2  # resumption saves the handshake, not the login


def test_a_changed_ca_setting_starts_afresh(server, settings, ca, tmp_path):
    open_and_close(server.port)
    copy = tmp_path / "ca.pem"
    copy.write_bytes(ca.ca_pem)

    settings.ICARUS_SMTP_CA_FILE = str(copy)

    assert open_and_close(server.port) is False
