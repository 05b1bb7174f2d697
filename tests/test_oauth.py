"""OAuth 2.0 sign-in (issue 10, points 2-7): Microsoft 365 app-only and Google Workspace
service accounts, against a local HTTPS token endpoint and an XOAUTH2 SMTP server."""

import base64
import datetime
import logging
import re
import socket
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from tests.conftest import MAILBOX
from tests.oauthservers import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_ID,
    TENANT,
    TokenEndpoint,
    XOAuth2Server,
    service_account_key,
)
from tests.smtpservers import TestCA
from tests.utils import XHR, committed, edit_url, submit
from wagtail_icarus_smtp import signals
from wagtail_icarus_smtp.admin import report
from wagtail_icarus_smtp.exceptions import IcarusSmtpError
from wagtail_icarus_smtp.models import AlertState, SmtpSettings
from wagtail_icarus_smtp.outbox import alerts, periodic
from wagtail_icarus_smtp.smtp import oauth, transport, xoauth2
from wagtail_icarus_smtp.smtp.deadline import Deadline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_tokens():
    oauth.forget()
    yield
    oauth.forget()


def microsoft(server, **overrides):
    values = {
        "port": str(server.port),
        "auth_method": "microsoft365",
        "password": None,
        "oauth_tenant_id": TENANT,
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
    }
    values.update(overrides)
    return submit(**values)


def google(server, key, **overrides):
    values = {
        "port": str(server.port),
        "auth_method": "google",
        "password": None,
        "google_service_account": key,
    }
    values.update(overrides)
    return submit(**values)


def current_report():
    return report.build(SmtpSettings.load())


# -- setup completes ---------------------------------------------------------------------


def test_microsoft365_setup_completes_with_one_token_and_one_auth(xserver, endpoint):
    form = microsoft(xserver)
    assert not form.errors, form.errors

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "complete"
    live = smtp_settings.live_config
    assert (live.auth_method, live.oauth_tenant_id, live.oauth_client_id) == (
        "microsoft365",
        TENANT,
        CLIENT_ID,
    )
    assert len(endpoint.token_requests) == 1
    path, form_sent = endpoint.token_requests[0]
    assert path == f"/{TENANT}/oauth2/v2.0/token"
    assert form_sent["scope"] == "https://outlook.office365.com/.default"
    assert form_sent["grant_type"] == "client_credentials"
    assert xserver.auth_attempts == 1
    user, token = xserver.xoauth2_logins[0]
    assert user == MAILBOX and endpoint.issued[token] == CLIENT_ID
    assert any(
        path.endswith("/v2.0/.well-known/openid-configuration") for path, _ in endpoint.requests
    )


def test_google_workspace_setup_completes(xserver, endpoint):
    key = service_account_key(endpoint)
    endpoint.delegated.add(MAILBOX)

    form = google(xserver, key)
    assert not form.errors, form.errors

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "complete", smtp_settings.current_event.reply
    assert smtp_settings.live_config.auth_method == "google"
    user, token = xserver.xoauth2_logins[0]
    assert user == MAILBOX and endpoint.issued[token] == MAILBOX
    assert [path for path, _ in endpoint.token_requests] == ["/google/token"]


def test_fifty_messages_cost_one_token_request(xserver, endpoint, our_backend):
    assert not microsoft(xserver).errors
    oauth.forget()
    endpoint.token_requests.clear()

    with committed():
        for number in range(50):
            mail.send_mail(f"Buchung {number}", "Hallo", None, [f"kunde{number}@example.com"])

    xserver.wait_for_messages(50)
    assert len(endpoint.token_requests) == 1


def test_an_expiring_token_is_renewed(xserver, endpoint, monkeypatch):
    assert not microsoft(xserver).errors
    mailbox = transport.Mailbox(
        "localhost",
        xserver.port,
        MAILBOX,
        "",
        oauth=oauth.MicrosoftApp(TENANT, CLIENT_ID, CLIENT_SECRET),
    )
    transport.probe(mailbox)  # the token of the setup is reused
    assert len(endpoint.token_requests) == 1

    later = oauth.time.monotonic() + endpoint.expires_in - oauth.RENEW_BEFORE + 1
    monkeypatch.setattr(oauth.time, "monotonic", lambda: later)
    transport.probe(mailbox)

    assert len(endpoint.token_requests) == 2
    first, second = (token for _user, token in xserver.xoauth2_logins[-2:])
    assert first != second


def test_the_health_check_fetches_a_fresh_token(xserver, endpoint):
    assert not microsoft(xserver).errors

    assert periodic.health_check()["status"] == "complete"
    assert periodic.health_check()["status"] == "complete"

    assert len(endpoint.token_requests) == 3


# -- failures with their category and fix --------------------------------------------------

AADSTS_CASES = [
    ("7000215", {"oauth_client_secret": SECRET_ID}, "oauth_token", "not the Secret ID"),
    ("7000222", {}, "credentials_expired", "has expired"),
    (
        "700016",
        {"oauth_client_id": "11111111-2222-3333-4444-555555555555"},
        "oauth_token",
        "was not found in this tenant",
    ),
    (
        "90002",
        {"oauth_tenant_id": "dropzone-typo.onmicrosoft.com"},
        "oauth_token",
        "The tenant was not found",
    ),
]


@pytest.mark.parametrize(("code", "overrides", "category", "fix"), AADSTS_CASES)
def test_token_endpoint_refusals_show_category_and_fix(
    xserver, endpoint, code, overrides, category, fix
):
    if code == "7000222":
        endpoint.fail_with = code
    form = microsoft(xserver, **overrides)
    assert not form.errors, form.errors

    result = current_report()
    assert result["status"] == "failed"
    assert result["category"] == category
    assert f"AADSTS{code}" in result["reply"]
    assert fix in result["fix"]
    assert xserver.auth_attempts == 0  # no token, no SMTP login
    assert CLIENT_SECRET not in str(result)


def test_german_fix_for_the_secret_id(xserver, endpoint):
    microsoft(xserver, oauth_client_secret=SECRET_ID)
    with translation.override("de"):
        result = current_report()
    assert result["category_label"] == "Anmelde-Token verweigert"
    assert "Wert des Geheimnisses" in result["fix"]
    assert "nicht die Geheimnis-ID" in result["fix"]


def test_smtp_535_5_7_3_explains_the_missing_permission_with_powershell(
    start_server, trust, endpoint, ca
):
    smtp = start_server(
        XOAuth2Server, endpoint=endpoint, ca=ca, users={MAILBOX: ""}, app_client_id="other"
    )
    trust(smtp.port, "starttls")
    microsoft(smtp)

    result = current_report()
    assert result["category"] == "auth"
    assert result["reply"].startswith("535 5.7.3")
    assert '"status": "401"' in result["reply"]  # the 334 JSON error is kept
    assert f"New-ServicePrincipal -AppId {CLIENT_ID} -ObjectId" in result["commands"]
    assert f"Add-MailboxPermission -Identity {MAILBOX} -User" in result["commands"]
    assert "-AccessRights FullAccess" in result["commands"]
    assert f"Connect-ExchangeOnline -Organization {TENANT}" in result["commands"]
    assert smtp.auth_attempts == 1  # one AUTH, never retried


def test_smtp_535_5_7_139_explains_smtp_auth_switched_off(start_server, trust, endpoint, ca):
    refusal = (
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."
    )
    smtp = start_server(
        XOAuth2Server,
        endpoint=endpoint,
        ca=ca,
        users={MAILBOX: ""},
        app_client_id="other",
        refusal=refusal,
    )
    trust(smtp.port, "starttls")
    microsoft(smtp)

    result = current_report()
    assert result["category"] == "auth_disabled"
    assert (
        f"Set-CASMailbox -Identity {MAILBOX} -SmtpClientAuthenticationDisabled $false"
        in result["commands"]
    )


def test_google_unauthorized_client_explains_delegation(xserver, endpoint):
    key = service_account_key(endpoint)  # delegation not granted for the mailbox

    google(xserver, key)

    result = current_report()
    assert result["category"] == "oauth_token"
    assert "unauthorized_client" in result["reply"]
    assert "Domain-wide delegation" in result["fix"]
    assert "https://mail.google.com/" in result["fix"]


def test_a_deleted_google_key_is_credentials_expired(xserver, endpoint):
    key = service_account_key(endpoint)
    endpoint.delegated.add(MAILBOX)
    endpoint.fail_with = "google_key"

    google(xserver, key)

    assert current_report()["category"] == "credentials_expired"


# -- HTTPS like SMTP -------------------------------------------------------------------------


def test_a_token_endpoint_with_an_untrusted_certificate_is_refused(xserver, settings):
    stranger = TestCA()
    with TokenEndpoint(stranger) as untrusted:
        settings.ICARUS_SMTP_MICROSOFT_LOGIN_URL = untrusted.login_url
        microsoft(xserver)
        assert untrusted.token_requests == []  # the secret was never posted

    assert current_report()["category"] == "certificate"


def test_the_token_request_honours_the_total_deadline(xserver, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    settings.ICARUS_SMTP_MICROSOFT_LOGIN_URL = f"https://127.0.0.1:{listener.getsockname()[1]}"
    settings.ICARUS_SMTP_TIMEOUT = 1.5

    source = oauth.MicrosoftApp(TENANT, CLIENT_ID, CLIENT_SECRET)
    started = time.monotonic()
    with pytest.raises(IcarusSmtpError) as raised:
        oauth.token(source, transport.tls_context(), Deadline(1.5))
    assert time.monotonic() - started < 4
    assert raised.value.category == "timeout"
    # raised afresh: no frame of msal (its locals hold the secret) travels with it
    frames, tb = [], raised.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert not any("msal" in name for name in frames)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    listener.close()


def test_a_failed_oauth_draft_leaves_the_working_live_configuration(xserver, endpoint):
    assert not microsoft(xserver).errors
    live_before = SmtpSettings.load().live_config.version

    microsoft(xserver, oauth_client_secret=SECRET_ID)

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "failed"
    assert smtp_settings.live_config.version == live_before
    assert smtp_settings.live_config._oauth_client_secret_encrypted != (
        smtp_settings._oauth_client_secret_encrypted
    )


# -- the form ----------------------------------------------------------------------------------


def test_token_uri_must_be_https_and_public(xserver, endpoint):
    key = service_account_key(endpoint)
    plain = key.replace("https://127.0.0.1", "http://127.0.0.1")
    internal = key.replace(f"https://127.0.0.1:{endpoint.port}", "https://169.254.169.254")

    assert "google_service_account" in google(xserver, plain).errors
    form = google(xserver, internal)
    assert "internal network" in str(form.errors["google_service_account"])
    assert "google_service_account" in google(xserver, '{"type": "user"}').errors


def test_ids_are_checked(xserver, endpoint):
    form = microsoft(xserver, oauth_tenant_id="../../evil", oauth_client_id="abc")
    assert set(form.errors) >= {"oauth_tenant_id", "oauth_client_id"}


def test_a_changed_tenant_needs_reauth_and_the_secret_again(xserver, endpoint):
    assert not microsoft(xserver).errors
    other = "0f0f0f0f-1111-2222-3333-444444444444"

    form = microsoft(xserver, oauth_tenant_id=other, oauth_client_secret=None, confirm_password="")

    assert "oauth_client_secret" in form.errors
    assert "confirm_password" in form.errors
    assert SmtpSettings.load().oauth_tenant_id == TENANT


def test_a_changed_app_needs_reauth(xserver, endpoint):
    assert not microsoft(xserver).errors
    form = microsoft(
        xserver,
        oauth_client_id="0f0f0f0f-1111-2222-3333-444444444444",
        confirm_password="wrong",
    )
    assert "confirm_password" in form.errors


def test_missing_fields_follow_the_method(xserver, endpoint):
    microsoft(xserver, oauth_client_secret=None, oauth_client_id="", run_tasks=False)
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.missing_fields() == ["oauth_client_id", "oauth_client_secret"]
    assert smtp_settings.status == "started"


def test_smtp_editor_configures_oauth_and_secrets_never_show(
    xserver, endpoint, client, smtp_editor, caplog
):
    with caplog.at_level(logging.DEBUG):
        microsoft(xserver, oauth_client_secret=SECRET_ID)  # a failure with a reply
        form = submit(
            user=smtp_editor,
            port=str(xserver.port),
            auth_method="microsoft365",
            password=None,
            oauth_tenant_id=TENANT,
            oauth_client_id=CLIENT_ID,
            oauth_client_secret=CLIENT_SECRET,
        )
    assert not form.errors, form.errors
    assert SmtpSettings.load().status == "complete"
    client.force_login(smtp_editor)

    page = client.get(edit_url()).content.decode()
    status = client.get(reverse("wagtail_icarus_smtp:status"), **XHR).content.decode()
    history = client.get(reverse("wagtail_icarus_smtp:history")).content.decode()
    tokens = list(endpoint.issued)
    secrets = [CLIENT_SECRET, base64.b64encode(CLIENT_SECRET.encode()).decode(), *tokens]
    stored = SmtpSettings.load()._oauth_client_secret_encrypted

    assert "A client secret is stored" in page
    for text in (page, status, history, caplog.text):
        for secret in [*secrets, stored]:
            assert secret not in text
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith(("wagtail_icarus_smtp", "django_q", "wagtailcore_modellog")):
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (introspected names)
                rows = repr(cursor.fetchall())
                for secret in secrets:
                    assert secret not in rows


def test_an_editor_without_the_permission_sees_nothing(xserver, endpoint, client, admin_only_user):
    assert not microsoft(xserver).errors
    client.force_login(admin_only_user)
    response = client.get(edit_url(), **XHR)
    assert response.status_code in (302, 403)
    assert "oauth_client_secret" not in response.content.decode()


def test_only_the_chosen_methods_fields_are_shown_without_javascript(
    xserver, endpoint, client, smtp_editor
):
    assert not microsoft(xserver).errors
    client.force_login(smtp_editor)
    page = client.get(edit_url()).content.decode()
    wrappers = dict(re.findall(r'data-icarus-auth-method="([a-z0-9]+)"([^>]*)>', page))
    assert "hidden" in wrappers["password"]
    assert "hidden" not in wrappers["microsoft365"]
    assert "hidden" in wrappers["google"]


# -- nothing expires silently -------------------------------------------------------------------


def test_secret_expiry_alerts_30_and_7_days_before_and_at_once_when_expired(
    xserver, endpoint, monkeypatch
):
    assert not microsoft(xserver).errors
    now = timezone.now()
    expires = timezone.localdate(now) + datetime.timedelta(days=40)
    SmtpSettings.objects.update(oauth_secret_expires=expires)
    heard = []

    def listener(sender, kind, active, reminder, message, **kwargs):
        if not reminder:  # daily reminders come in between, as for every alert
            heard.append((kind, active, message))

    signals.alert.connect(listener)
    try:
        for days_later in (0, 15, 16, 34, 41):  # 40, 25, 24, 6 days left, expired
            later = now + datetime.timedelta(days=days_later)
            monkeypatch.setattr(alerts.timezone, "now", lambda later=later: later)
            alerts.evaluate()
    finally:
        signals.alert.disconnect(listener)

    expiring = [(active, message) for kind, active, message in heard if kind == "secret_expiring"]
    assert [(active, "30 days" in text, "7 days" in text) for active, text in expiring] == [
        (True, True, False),
        (True, False, True),
        (False, False, False),
    ]
    assert ("credentials_expired", True) in [(kind, active) for kind, active, _ in heard]
    assert AlertState.objects.get(kind=alerts.CREDENTIALS_EXPIRED).active


def test_an_expired_secret_at_the_health_check_is_an_alert_at_once(xserver, endpoint):
    assert not microsoft(xserver).errors
    endpoint.fail_with = "7000222"

    result = periodic.health_check()

    assert result["category"] == "credentials_expired"
    assert AlertState.objects.get(kind=alerts.CREDENTIALS_EXPIRED).active
    assert AlertState.objects.get(kind=alerts.LIVE_NOT_WORKING).active


def test_the_transcript_and_debug_output_mask_the_xoauth2_exchange(xserver, endpoint, capsys):
    assert not microsoft(xserver).errors
    mailbox = transport.Mailbox(
        "localhost",
        xserver.port,
        MAILBOX,
        "",
        oauth=oauth.MicrosoftApp(TENANT, CLIENT_ID, CLIENT_SECRET),
    )
    transcript = []

    client = transport.connect(mailbox, Deadline(5), debuglevel=2, transcript=transcript)
    transport.quit_quietly(client)

    token = xserver.xoauth2_logins[-1][1]
    text = "\n".join(transcript) + capsys.readouterr().err
    assert transport.CREDENTIALS_MASKED in transcript
    assert "S: 235" in "\n".join(transcript)
    for secret in (token, CLIENT_SECRET, xoauth2.initial_response(MAILBOX, token)):
        assert secret not in text
