"""Local stand-ins for Microsoft's and Google's token endpoints, and an SMTP server that
speaks ``AUTH XOAUTH2`` — never a real identity provider.

``TokenEndpoint`` is an HTTPS server (trustme certificate) on 127.0.0.1 that answers
what msal and google-auth ask: the OpenID configuration of a tenant, the tenant's token
endpoint (client credentials) and a Google token URI (a signed JWT assertion). Error
answers are the real bodies of Microsoft (AADSTS…) and Google. Tokens it issues are
accepted by ``XOAuth2Server`` for the mailbox they were issued for.

Do not import Django here.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.smtp import AuthResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.smtpservers import SmtpServer, _Handler, free_port

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0d4b3c2a-1f00-4e5b-9a8c-7d6e5f4a3b2c"
CLIENT_SECRET = "Zq8~s3cr3t.V4lu3-OnlyOnce_xyzABC123"
SECRET_ID = "5b1e2f3a-aaaa-bbbb-cccc-1234567890ab"
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"

TRACE = (
    "Trace ID: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 Correlation ID: "
    "1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809 Timestamp: 2026-11-29 23:41:07Z"
)

#: Real answers of login.microsoftonline.com (ids replaced), status and body.
AADSTS = {
    "7000215": (
        401,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the "
            "secret being sent in the request is the client secret value, not the client "
            f"secret ID, for a secret added to app '{CLIENT_ID}'. {TRACE}",
            "error_codes": [7000215],
            "error_uri": "https://login.microsoftonline.com/error?code=7000215",
        },
    ),
    "7000222": (
        401,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000222: The provided client secret keys for app "
            f"'{CLIENT_ID}' are expired. Visit the Azure portal to create new keys for your "
            "app: https://aka.ms/NewClientSecret, or consider using certificate credentials "
            f"for added security: https://aka.ms/certCreds. {TRACE}",
            "error_codes": [7000222],
            "error_uri": "https://login.microsoftonline.com/error?code=7000222",
        },
    ),
    "700016": (
        400,
        {
            "error": "unauthorized_client",
            "error_description": f"AADSTS700016: Application with identifier '{CLIENT_ID}' "
            "was not found in the directory 'Dropzone Musterstadt'. This can happen if the "
            "application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication "
            f"request to the wrong tenant. {TRACE}",
            "error_codes": [700016],
            "error_uri": "https://login.microsoftonline.com/error?code=700016",
        },
    ),
    "90002": (
        400,
        {
            "error": "invalid_tenant",
            "error_description": "AADSTS90002: Tenant 'dropzone-typo.onmicrosoft.com' not "
            "found. Check to make sure you have the correct tenant ID and are signing into "
            f"the correct cloud. {TRACE}",
            "error_codes": [90002],
            "error_uri": "https://login.microsoftonline.com/error?code=90002",
        },
    ),
}

MICROSOFT_535 = "535 5.7.3 Authentication unsuccessful [FR2P281CA0001.DEUP281.PROD.OUTLOOK.COM]"

GOOGLE_UNAUTHORIZED = (
    401,
    {
        "error": "unauthorized_client",
        "error_description": "Client is unauthorized to retrieve access tokens using this "
        "method, or client not authorized for any of the scopes requested.",
    },
)
GOOGLE_BAD_SIGNATURE = (
    400,
    {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
)


class TokenEndpoint:
    """HTTPS on 127.0.0.1: ``/{tenant}/v2.0/.well-known/openid-configuration``,
    ``/{tenant}/oauth2/v2.0/token`` and ``/google/token``.

    ``tenants``: known tenants; ``apps``: client id -> secret; ``google_keys``: service
    account e-mail -> public key PEM; ``delegated``: mailboxes the service accounts may
    impersonate. ``fail_with``: an AADSTS number or ``"google"``/``"google_key"`` to
    answer every token request with that error. ``expires_in``: token lifetime.
    Records ``token_requests`` (path, form) and ``issued`` (token -> mailbox or client).
    """

    def __init__(self, ca, *, hostnames=("localhost", "127.0.0.1")):
        self.ca = ca
        self.context = ca.server_context(*hostnames)
        self.port = free_port()
        self.tenants = {TENANT}
        self.apps = {CLIENT_ID: CLIENT_SECRET}
        self.google_keys = {}
        self.delegated = set()
        self.fail_with = None
        self.expires_in = 3599
        self.token_requests = []
        self.requests = []
        self.issued = {}
        self._lock = threading.Lock()
        self._server = None

    @property
    def login_url(self):
        return f"https://127.0.0.1:{self.port}"

    @property
    def google_token_uri(self):
        return f"https://127.0.0.1:{self.port}/google/token"

    def issue(self, subject):
        with self._lock:
            token = f"ya29.test-token-{len(self.issued) + 1}-" + "x" * 40
            self.issued[token] = subject
            return token

    def __enter__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner._record(self.path, None)
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    tenant = parts[0]
                    if tenant not in owner.tenants:
                        return self._json(*AADSTS["90002"])
                    base = f"{owner.login_url}/{tenant}"
                    return self._json(
                        200,
                        {
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "issuer": f"{base}/v2.0",
                        },
                    )
                self._json(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                owner._record(self.path, form)
                with owner._lock:
                    owner.token_requests.append((self.path, form))
                if self.path == "/google/token":
                    return self._json(*owner._google(form))
                parts = self.path.strip("/").split("/")
                if parts[1:] == ["oauth2", "v2.0", "token"]:
                    return self._json(*owner._microsoft(parts[0], form))
                self._json(404, {"error": "not_found"})

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    def _record(self, path, form):
        with self._lock:
            self.requests.append((path, form))

    def _microsoft(self, tenant, form):
        if self.fail_with in AADSTS:
            return AADSTS[self.fail_with]
        if tenant not in self.tenants:
            return AADSTS["90002"]
        client = form.get("client_id")
        if client not in self.apps:
            return AADSTS["700016"]
        if form.get("client_secret") != self.apps[client]:
            return AADSTS["7000215"]
        if form.get("grant_type") != "client_credentials" or form.get("scope") != MICROSOFT_SCOPE:
            return 400, {"error": "invalid_scope", "error_description": "AADSTS70011: scope"}
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": self.issue(client),
        }

    def _google(self, form):
        if self.fail_with == "google":
            return GOOGLE_UNAUTHORIZED
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        assertion = form.get("assertion", "")
        unverified = jwt.decode(assertion, verify=False)
        key = self.google_keys.get(unverified.get("iss"))
        if key is None or self.fail_with == "google_key":
            return GOOGLE_BAD_SIGNATURE
        try:
            # google-auth always names Google's token endpoint as the audience
            claims = jwt.decode(assertion, certs=key, audience=GOOGLE_AUDIENCE)
        except ValueError:
            return GOOGLE_BAD_SIGNATURE
        if claims.get("scope") != GOOGLE_SCOPE or claims.get("sub") not in self.delegated:
            return GOOGLE_UNAUTHORIZED
        return 200, {
            "access_token": self.issue(claims["sub"]),
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }


def service_account_key(endpoint, email="icarus-mailer@dropzone-123.iam.gserviceaccount.com"):
    """A fresh service account key (JSON text) whose token_uri is ``endpoint``'s; the
    endpoint learns its public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint.google_keys[email] = public
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "dropzone-123",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem,
            "client_email": email,
            "client_id": "112233445566778899001",
            "token_uri": endpoint.google_token_uri,
        }
    )


class _XOAuth2Handler(_Handler):
    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        owner = self.owner
        blob = args[1] if len(args) > 1 else await server.challenge_auth("")
        if isinstance(blob, str):
            blob = blob.encode()
        try:
            text = base64.b64decode(blob).decode()
            fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        except ValueError:
            fields = {}
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        owner.xoauth2_logins.append((user, token))
        subject = owner.endpoint.issued.get(token) if owner.endpoint else None
        if token and subject in (user, owner.app_client_id) and user in owner.users:
            return AuthResult(success=True, auth_data=user)
        error = {"status": "401", "schemes": "bearer", "scope": "https://outlook.office.com/"}
        await server.challenge_auth(base64.b64encode(json.dumps(error).encode()), False)
        return AuthResult(success=False, handled=False, message=owner.refusal)


class XOAuth2Server(SmtpServer):
    """A STARTTLS server offering only ``AUTH XOAUTH2``: accepts the tokens ``endpoint``
    issued for a mailbox in ``users`` (Google: for that mailbox; Microsoft: for the app
    ``app_client_id``); otherwise ``334`` + base64 JSON, then ``refusal``."""

    handler_class = _XOAuth2Handler
    extra_mechanisms = ("XOAUTH2",)

    def __init__(self, *, endpoint=None, app_client_id=CLIENT_ID, refusal=None, **kwargs):
        kwargs.setdefault("auth_mechanisms", ("XOAUTH2",))
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.app_client_id = app_client_id
        self.refusal = refusal or MICROSOFT_535
        self.xoauth2_logins = []
