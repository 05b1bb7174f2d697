"""TLS context built once, sessions resumed: the speed-up over the stock backend."""

import threading

from tests.conftest import MAILBOX, PASSWORD
from wagtail_icarus_smtp.smtp import transport


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


def test_a_session_from_a_replaced_context_is_not_offered(server):
    """Another thread may build a new context (a changed CA file) between our reading
    the context and the session: a session only resumes with the context that made it
    (ssl raised "Session refers to a different SSLContext" before)."""
    open_and_close(server.port)
    made_by_the_old_context = dict(transport._sessions)
    transport.reset()
    transport.tls_context()  # the new context, built by "another thread"
    transport._sessions.update(made_by_the_old_context)  # which we still read

    assert open_and_close(server.port) is False  # a full handshake, no error
    assert open_and_close(server.port) is True


def test_threads_starting_together_share_one_context(server):
    transport.reset()
    barrier = threading.Barrier(4)
    contexts, errors = [], []

    def connect():
        try:
            barrier.wait(timeout=10)
            contexts.append(transport.tls_context())
            open_and_close(server.port)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len({id(context) for context in contexts}) == 1
