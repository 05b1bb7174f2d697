"""POST JSON to an incoming webhook (Slack, Mattermost, Teams) within one total deadline.

A per-read timeout does not bound a server that drips its reply one byte at a time:
here the dial, the TLS handshake, the request and every read of the reply wait only for
what is left of one deadline (as ``transport`` does for SMTP). urllib still does the
rest (proxies from the environment, redirects, errors for non-2xx replies). HTTPS
verifies the certificate against the system store plus ``ICARUS_SMTP_CA_FILE``.

Text for a chat is escaped with Slack's rules, so that a mail server's reply quoted in an
alert can neither mention a whole channel nor form a disguised link.
"""

import functools
import http.client
import io
import json
import re
import socket
import urllib.request

from ..smtp import transport

#: Mentions that notify a whole channel (Slack and Mattermost read them in plain text).
_CHANNEL_MENTIONS = re.compile(r"@(?=(?:here|channel|all|everyone)\b)", re.IGNORECASE)
ZERO_WIDTH_JOINER = "\u200d"


def chat_escape(text):
    """``&``, ``<`` and ``>`` as entities (Slack's rule: no ``<!channel>``, no
    ``<url|text>`` link), and ``@here``, ``@channel``, ``@all``, ``@everyone`` broken by
    a zero-width joiner after the ``@``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _CHANNEL_MENTIONS.sub("@" + ZERO_WIDTH_JOINER, text)


def post_json(url, payload, seconds):
    """POST ``payload`` as JSON to ``url``; give up after ``seconds`` in total.

    Raises ``OSError`` (``urllib.error.URLError``, ``HTTPError`` for a non-2xx reply,
    ``transport.DeadlineExceeded``), ``http.client.HTTPException`` or ``ValueError``.
    """
    deadline = transport.Deadline(seconds)
    opener = urllib.request.build_opener(
        _DeadlineHTTPHandler(deadline),
        _DeadlineHTTPSHandler(deadline, context=transport.tls_context()),
    )
    request = urllib.request.Request(  # noqa: S310 (URL from Django settings, not users)
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with opener.open(request, timeout=deadline.remaining()) as response:
        return response.status


class _DeadlineReader(io.RawIOBase):
    """The reply as http.client reads it: each read waits only for what is left."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        self._sock.settimeout(self._deadline.remaining())
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client holds as its socket (it only sends, makes a file and closes)."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data):
        self._sock.settimeout(self._deadline.remaining())
        self._sock.sendall(data)

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self):
        self._sock.close()


class _DeadlineConnection:
    """Mixin for ``http.client`` connections bounded by ``deadline``."""

    def __init__(self, *args, deadline, **kwargs):
        kwargs["timeout"] = deadline.remaining()
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self._create_connection = self._dial

    def _dial(self, address, timeout, source_address=None):
        sock = socket.create_connection(address, self.deadline.remaining(), source_address)
        sock.settimeout(self.deadline.remaining())  # what the TLS handshake may take
        return sock

    def connect(self):
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(functools.partial(_HTTPConnection, deadline=self.deadline), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline, *, context):
        super().__init__(context=context)
        self.deadline = deadline

    def https_open(self, req):
        connection = functools.partial(_HTTPSConnection, deadline=self.deadline)
        return self.do_open(connection, req, context=self._context)
