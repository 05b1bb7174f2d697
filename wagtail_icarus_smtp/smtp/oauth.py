"""OAuth 2.0 access tokens for SMTP (``AUTH XOAUTH2``): where they come from, how long
they are kept, and what a refusal means.

Two sources, both app-only — no user signs in, there is no refresh token that could
die after 90 days of inactivity:

* ``MicrosoftApp``: Microsoft 365, client credentials of an app registration (``msal``),
  scope ``https://outlook.office365.com/.default``, token from
  ``{ICARUS_SMTP_MICROSOFT_LOGIN_URL}/{tenant}/oauth2/v2.0/token``.
* ``GoogleServiceAccount``: Google Workspace, a service account with domain-wide
  delegation (``google-auth``) impersonating the mailbox, scope ``https://mail.google.com/``.
  The key's ``token_uri`` is the editor's input: it must be ``https`` and pass the host
  guard.

A token is kept in this process until five minutes before it expires (``token()``), so
a batch of messages costs one token request; it is never written anywhere. Every
request goes through ``https.Client`` (verified TLS, host guard, total deadline).
"""

import dataclasses
import datetime
import hashlib
import json
import threading
import time
import urllib.parse

import msal
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from google.auth import exceptions as google_exceptions
from google.oauth2 import service_account

from .. import conf
from ..exceptions import IcarusSmtpError
from . import failures, https

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
#: A cached token is renewed this many seconds before it expires.
RENEW_BEFORE = 5 * 60

#: AADSTS error code -> category. Everything else the token endpoint refuses is
#: ``oauth_token``.
MICROSOFT_EXPIRED = {7000222}  # the client secret has expired
#: Google: a deleted or disabled key is refused with this text.
GOOGLE_EXPIRED = ("invalid jwt signature", "account not found", "disabled")

_cache = {}
_cache_lock = threading.Lock()


class TokenRefused(IcarusSmtpError):
    """The identity provider answered, but issued no token. ``reply`` holds its error
    code and description (never the secret); ``code`` the AADSTS number or Google's
    ``error`` string, for the advice the admin shows."""

    category = "oauth_token"

    def __init__(self, message=None, *, category=None, reply="", code=""):
        super().__init__(message, category=category, reply=reply)
        self.code = code


class InvalidKey(IcarusSmtpError):
    """The stored service account key cannot be used (not a key, or a token_uri that is
    not ``https`` or not allowed)."""

    category = "oauth_token"


@dataclasses.dataclass(frozen=True)
class MicrosoftApp:
    """An app registration in a Microsoft 365 tenant (client credentials)."""

    tenant: str
    client_id: str
    secret: str = dataclasses.field(repr=False)

    @property
    def secrets(self):
        return [self.secret]

    def cache_key(self):
        return ("microsoft", _login_url(), self.tenant, self.client_id, _digest(self.secret))

    @sensitive_variables()
    def fetch(self, context, deadline):
        """``(token, seconds it is valid)`` from the tenant's token endpoint."""
        authority = f"{_login_url()}/{urllib.parse.quote(self.tenant, safe='')}"
        client = https.Client(context, deadline, [urllib.parse.urlsplit(authority).hostname])
        fresh = None
        try:
            result = self._acquire(authority, client)
        except Exception as error:  # every kind: raised afresh below, without msal's frames
            fresh = _fresh(error, self.secrets)
        if fresh is not None:
            raise fresh from None  # msal's frames hold the secret in their locals
        if "access_token" not in result:
            raise _microsoft_refusal(result)
        return result["access_token"], int(result.get("expires_in") or 3600)

    @sensitive_variables()
    def _acquire(self, authority, client):
        try:
            app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.secret,
                authority=authority,
                http_client=client,
                instance_discovery=False,
                token_cache=msal.TokenCache(),  # ours is in this module; msal's stays empty
            )
            result = app.acquire_token_for_client(scopes=[MICROSOFT_SCOPE])
        except ValueError as error:  # msal: the OpenID configuration was refused
            cause = _transport_cause(error)
            if cause is not None:
                raise cause from None  # TLS, network, deadline: their own categories
            result = _discovery_error(error)
        return result


@dataclasses.dataclass(frozen=True)
class GoogleServiceAccount:
    """A Google Workspace service account key that impersonates ``subject``."""

    key: str = dataclasses.field(repr=False)  # the JSON key file's text
    subject: str = ""

    @property
    def secrets(self):
        info = _key_info(self.key, check=False) or {}
        return [self.key, info.get("private_key", ""), info.get("private_key_id", "")]

    def cache_key(self):
        return ("google", self.subject, _digest(self.key))

    @sensitive_variables()
    def fetch(self, context, deadline):
        info = _key_info(self.key)
        host = urllib.parse.urlsplit(info["token_uri"]).hostname
        client = https.Client(context, deadline, [host])
        fresh = None
        try:
            credentials = service_account.Credentials.from_service_account_info(
                info, scopes=[GOOGLE_SCOPE], subject=self.subject
            )
            credentials.refresh(client)
        except google_exceptions.RefreshError as error:
            fresh = _transport_cause(error) or _google_refusal(error)
            if not isinstance(fresh, TokenRefused):
                fresh = _fresh(fresh, self.secrets)
        except (ValueError, google_exceptions.GoogleAuthError) as error:
            fresh = _transport_cause(error)
            if fresh is not None:
                fresh = _fresh(fresh, self.secrets)
            else:
                fresh = InvalidKey(reply=_("The service account key cannot be used."))
        except Exception as error:  # every kind: raised afresh, without the key's frames
            fresh = _fresh(error, self.secrets)
        if fresh is not None:
            raise fresh from None
        expiry = credentials.expiry
        seconds = 3600
        if expiry is not None:
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            seconds = int((expiry.replace(tzinfo=None) - now).total_seconds())
        return credentials.token, seconds


@sensitive_variables()
def token(source, context, deadline):
    """An access token for ``source``: the cached one until ``RENEW_BEFORE`` seconds
    before it expires, else a new one (one request per process and expiry)."""
    key = source.cache_key()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[1] - RENEW_BEFORE > time.monotonic():
            return cached[0]
        value, seconds = source.fetch(context, deadline)
        _cache[key] = (value, time.monotonic() + seconds)
        return value


def forget(source=None):
    """Drop the cached token of ``source`` (all with ``None``): the next use asks anew
    (the health check proves that secret and permissions still work)."""
    with _cache_lock:
        if source is None:
            _cache.clear()
        else:
            _cache.pop(source.cache_key(), None)


def reset(**kwargs):
    forget()


conf.reloaded.connect(reset, dispatch_uid="wagtail_icarus_smtp.oauth")


def _login_url():
    return conf.get("MICROSOFT_LOGIN_URL").rstrip("/")


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@sensitive_variables()
def _fresh(error, secrets):
    """``error`` as a new exception without the frames of msal or google-auth (their
    locals hold the secret): its category (``timeout``, ``certificate``,
    ``connection`` …) and masked text are kept."""
    if isinstance(error, TokenRefused):
        return TokenRefused(str(error), category=error.category, reply=error.reply, code=error.code)
    failure = failures.classify(error, secrets=secrets)
    return IcarusSmtpError(failure.reply or None, category=failure.category, reply=failure.reply)


def _transport_cause(error):
    """The network, TLS or deadline error behind msal's ``ValueError``, if any (a
    certificate error is a ``ValueError`` too, and msal re-raises it as one)."""
    while error is not None:
        if isinstance(error, (OSError, IcarusSmtpError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def _discovery_error(error):
    """msal's error result for a refused OpenID configuration (an unknown tenant is
    refused there, with an AADSTS body that msal keeps only in the chained error)."""
    while error is not None:
        text = str(error)
        if "AADSTS" in text:
            start = text.find("{")
            try:
                data = json.loads(text[start:]) if start >= 0 else None
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("error"):
                return data
            return {"error": "invalid_request", "error_description": text[text.find("AADSTS") :]}
        error = error.__cause__ or error.__context__
    return {
        "error": "invalid_request",
        "error_description": _("The tenant's sign-in configuration could not be read."),
    }


def _aadsts_codes(text):
    found = []
    for part in text.split("AADSTS")[1:]:
        digits = "".join(char for char in part[:10] if char.isdigit())
        if digits and part.startswith(digits):
            found.append(digits)
    return found


def _microsoft_refusal(result):
    """``TokenRefused`` for msal's error result: the first AADSTS code decides."""
    codes = [int(code) for code in result.get("error_codes") or []]
    description = str(result.get("error_description") or "")
    if not codes:
        codes = [int(code) for code in _aadsts_codes(description)]
    first_line = description.splitlines()[0] if description else ""
    reply = f"{result.get('error', 'error')}: {first_line}".strip()
    code = f"AADSTS{codes[0]}" if codes else str(result.get("error") or "")
    category = "credentials_expired" if set(codes) & MICROSOFT_EXPIRED else "oauth_token"
    return TokenRefused(category=category, reply=reply, code=code)


def _google_refusal(error):
    data = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], dict) else {}
    code = str(data.get("error") or "")
    text = str(error.args[0]) if error.args else ""
    if not code and ":" in text:
        code = text.split(":", 1)[0].strip()
    lowered = text.lower()
    expired = code == "invalid_grant" and any(mark in lowered for mark in GOOGLE_EXPIRED)
    category = "credentials_expired" if expired else "oauth_token"
    return TokenRefused(category=category, reply=text[:300], code=code)


@sensitive_variables()
def _key_info(text, *, check=True):
    """The parsed service account key. With ``check``, raises ``InvalidKey`` unless it
    is a service account key whose ``token_uri`` is an ``https`` URL."""
    try:
        info = json.loads(text)
    except (TypeError, ValueError):
        info = None
    if not isinstance(info, dict):
        if check:
            raise InvalidKey(reply=_("The service account key is not a JSON key file."))
        return None
    if check:
        problem = key_problem(info)
        if problem:
            raise InvalidKey(reply=problem)
    return info


def key_problem(info):
    """Why ``info`` (a parsed JSON key) cannot be used, or ``""``. The host guard is
    applied when the token is fetched (and by the form)."""
    if info.get("type") != "service_account":
        return _("This is not a service account key (its type must be service_account).")
    for name in ("client_email", "private_key", "token_uri"):
        if not isinstance(info.get(name), str) or not info[name]:
            return _("The key lacks the field %(name)s.") % {"name": name}
    parts = urllib.parse.urlsplit(info["token_uri"])
    if parts.scheme != "https" or not parts.hostname:
        return _("The key's token_uri must be an https:// address.")
    return ""
