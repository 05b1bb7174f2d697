"""HTTPS for token requests, held to the same rules as SMTP.

The token endpoints of Microsoft and Google are reached like a mail server: the host
passes the host guard and the connection goes to exactly the vetted addresses, TLS is
verified with the context SMTP uses (system trust store plus ``ICARUS_SMTP_CA_FILE``),
and the whole request shares one total deadline — a watchdog closes the socket when it
passes, so a server that drips its answer cannot stretch it. Only ``https://`` URLs to
``allowed_hosts`` are fetched: a discovery document cannot send the client secret
elsewhere. Used as msal's ``http_client`` and as google-auth's ``Request``.
"""

import contextlib
import http.client
import json
import socket
import threading
import urllib.parse

from django.utils.translation import gettext as _

from ..exceptions import IcarusSmtpError
from . import hostguard
from .deadline import DeadlineExceeded

#: The largest answer read from a token endpoint (real ones are about 2 KB).
MAX_BODY = 64 * 1024


class RequestRefused(IcarusSmtpError):
    """A URL we do not fetch: not ``https``, or another host than the token endpoint's."""

    category = "oauth_token"


class Response:
    """What msal (``status_code``, ``text``, ``headers``) and google-auth (``status``,
    ``data``, ``headers``) read from an answer."""

    def __init__(self, status, headers, body):
        self.status_code = self.status = status
        self.headers = headers
        self.data = body
        self.text = body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.text)

    def raise_for_status(self):
        if self.status_code >= 400:
            raise ConnectionError(f"the token endpoint answered HTTP {self.status_code}")


class _PinnedConnection(http.client.HTTPSConnection):
    """Dials only the vetted addresses; TLS checks the certificate against the name."""

    def __init__(self, host, port, *, addresses, context, deadline):
        super().__init__(host, port, context=context, timeout=deadline.remaining())
        self.addresses = addresses
        self.deadline = deadline

    def connect(self):
        error = OSError(f"no address to connect to for {self.host}")
        for address in self.addresses:
            try:
                sock = socket.create_connection(
                    (address, self.port), timeout=self.deadline.remaining()
                )
                break
            except DeadlineExceeded:
                raise
            except OSError as failed:
                error = failed
        else:
            raise error
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Client:
    """A tiny HTTPS client for one token exchange (``deadline``: a ``Deadline``)."""

    def __init__(self, context, deadline, allowed_hosts):
        self.context = context
        self.deadline = deadline
        self.allowed_hosts = {host.lower() for host in allowed_hosts}

    # msal's interface
    def get(self, url, params=None, headers=None, **kwargs):
        return self.request("GET", _with_params(url, params), headers=headers)

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        body = urllib.parse.urlencode(data) if isinstance(data, dict) else data
        headers = dict(headers or {})
        if isinstance(data, dict):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return self.request("POST", _with_params(url, params), body=body, headers=headers)

    def close(self):
        pass

    # google-auth's interface (``google.auth.transport.Request``)
    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return self.request(method, url, body=body, headers=headers)

    def request(self, method, url, *, body=None, headers=None):
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or host not in self.allowed_hosts:
            text = _("Token requests go only to the token endpoint over HTTPS (not %(url)s).")
            raise RequestRefused(reply=text % {"url": f"{parts.scheme}://{host}"})
        port = parts.port or 443
        addresses = hostguard.resolve(host, port)
        connection = _PinnedConnection(
            host, port, addresses=addresses, context=self.context, deadline=self.deadline
        )
        watchdog = threading.Timer(self.deadline.remaining(), _shut, (connection,))
        watchdog.start()
        try:
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            if isinstance(body, str):
                body = body.encode()
            connection.request(method, path, body=body, headers=dict(headers or {}))
            answer = connection.getresponse()
            data = answer.read(MAX_BODY + 1)
            self.deadline.remaining()
            if len(data) > MAX_BODY:
                raise http.client.HTTPException("the token endpoint's answer is too long")
            return Response(answer.status, dict(answer.getheaders()), data)
        except (OSError, http.client.HTTPException) as error:
            self.deadline.remaining()  # a watchdog shutdown is the deadline
            if isinstance(error, http.client.HTTPException):
                raise ConnectionError(f"{type(error).__name__}: {error}") from None
            raise
        finally:
            watchdog.cancel()
            connection.close()


def _shut(connection):
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _with_params(url, params):
    if not params:
        return url
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + urllib.parse.urlencode(params)
