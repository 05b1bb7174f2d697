"""An editor with the SMTP permission must not become an owner through it.

Whoever controls the live mail server reads every password-reset mail. The walk an
attacker took: point the mail at their own relay (the stored password followed the new
host), request a reset for the superuser, log in as them; "Resend" re-delivered old mail
through the new relay. Every step now needs the owner-level confirmations.
"""

import re

import pytest
from django.urls import reverse
from django_q.models import OrmQ
from wagtail.models import ModelLogEntry

from tests.conftest import MAILBOX, PASSWORD
from tests.utils import committed, configure, edit_url, form_data, german
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

pytestmark = pytest.mark.django_db

ATTACKER_PASSWORD = "attacker-knows-this"
NOTICE = "Security notice: the mail server of Test site is being changed"


def post_settings(client, **overrides):
    """Submit the settings page as the logged-in user; on-commit work (the task) runs."""
    with committed():
        return client.post(edit_url(), form_data(**overrides))


def field_errors(response, name):
    """The error messages shown at field ``name``, as the page renders them."""
    html = response.content.decode()
    block = re.search(rf'id="panel-child-[a-z_]+-child-{name}-errors">(.*?)</div>', html, re.S)
    return re.findall(r'<p class="error-message">\s*(.*?)\s*</p>', block.group(1), re.S)


@pytest.fixture
def relay(start_server, trust):
    """The attacker's relay: accepts any login of the mailbox (it wants the password)."""
    smtp = start_server(mode="starttls", users={MAILBOX: ATTACKER_PASSWORD})
    trust(smtp.port)
    return smtp


@pytest.fixture
def live(server, trust):
    """Working live settings on ``server`` (sending on), saved by the site owner."""
    trust(server.port)
    smtp_settings = configure(server)
    server.clear()
    return smtp_settings


# -- 1. the stored password never follows a changed target ------------------------------


def test_changing_only_the_server_needs_the_mailbox_password_again(
    live, relay, smtp_editor, client
):
    client.force_login(german(smtp_editor))
    version = SmtpSettings.load().version
    events = SmtpSettings.load().events.count()

    response = post_settings(client, port=str(relay.port), password="", confirm_password="pw")

    assert response.status_code == 200  # the form again, with the error
    assert field_errors(response, "password") == [
        "Der Server wurde geändert: bitte das Passwort erneut eingeben."
    ]
    assert SmtpSettings.load().version == version  # nothing saved
    assert SmtpSettings.load().port == live.port
    assert not OrmQ.objects.exists()  # no connection test queued
    assert SmtpSettings.load().events.count() == events  # no "running", no history row
    assert relay.sessions == 0  # the new server never saw a connection, let alone AUTH
    assert relay.auth_attempts == 0


def test_a_partial_change_may_be_saved_but_the_password_never_follows_it(
    live, relay, smtp_editor, client
):
    """Clearing the server (a partial draft) reaches nobody; typing a new one then needs
    the password again — the stored one is never sent to it."""
    client.force_login(smtp_editor)
    first = post_settings(client, host="", port=str(live.port), password="", confirm_password="pw")
    assert first.status_code == 302, first.context["form"].errors

    response = post_settings(
        client, host="localhost", port=str(relay.port), password="", confirm_password="pw"
    )

    assert "password" in response.context["form"].errors
    assert relay.sessions == 0


# -- 2. changing where mail goes is an owner-level action --------------------------------


@pytest.mark.parametrize(
    ("confirmation", "message"),
    [
        (
            "",
            "Sie ändern, wohin die E-Mails der Website gehen. Bestätigen Sie mit Ihrem "
            "Admin-Passwort.",
        ),
        ("geraten", "Das ist nicht Ihr Admin-Passwort. Es wurde nichts gespeichert."),
    ],
)
def test_a_new_target_needs_the_editors_own_admin_password(
    live, relay, smtp_editor, client, confirmation, message
):
    client.force_login(german(smtp_editor))

    response = post_settings(
        client, port=str(relay.port), password=ATTACKER_PASSWORD, confirm_password=confirmation
    )

    assert field_errors(response, "confirm_password") == [message]
    smtp_settings = SmtpSettings.load()
    assert (smtp_settings.host, smtp_settings.port) == ("localhost", live.port)
    assert smtp_settings.live_config.port == live.port
    assert not OrmQ.objects.exists()
    assert relay.sessions == 0


def test_the_admin_password_cannot_be_guessed_through_the_form(
    live, relay, smtp_editor, client, settings
):
    settings.ICARUS_SMTP_RATE_LIMITS = {"reauth": (3, 100, 600)}
    client.force_login(smtp_editor)
    for guess in ("a", "b", "c"):
        post_settings(client, port=str(relay.port), confirm_password=guess)

    response = post_settings(client, port=str(relay.port), confirm_password="pw")  # right

    assert "Too many attempts" in field_errors(response, "confirm_password")[0]
    assert SmtpSettings.load().port == live.port


def test_the_takeover_walk_tells_the_owners_through_the_old_server_first(
    live, server, relay, smtp_editor, owner, client, settings
):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"  # the runner swaps it
    client.force_login(smtp_editor)

    response = post_settings(
        client, port=str(relay.port), password=ATTACKER_PASSWORD, confirm_password="pw"
    )
    assert response.status_code == 302
    assert SmtpSettings.load().live_config.port == relay.port  # the test passed: it is live

    # The owner and the previous mailbox were told through the previous server, before
    # anything went through the new one.
    [notice] = server.wait_for_messages(1)
    assert notice.message["Subject"] == NOTICE
    assert sorted(notice.rcpt_tos) == sorted([owner.email, MAILBOX])
    body = notice.message.get_content()
    assert "smtp-editor" in body
    assert f"localhost, port {server.port}" in body
    assert f"localhost, port {relay.port}" in body
    assert "http://testserver/admin/icarus-smtp/history/" in body
    assert relay.messages == []
    log = list(ModelLogEntry.objects.order_by("-pk").values_list("action", flat=True))
    notified = log.index("wagtail_icarus_smtp.target_change_notified")
    assert notified > log.index("wagtail_icarus_smtp.test_succeeded")  # logged before it

    # The reset link the attacker now requests goes through their relay — but the
    # owner already knows who changed what, and where to look.
    client.logout()
    with committed():
        client.post("/admin/password_reset/", {"email": owner.email})
    [reset] = relay.wait_for_messages(1)
    assert reset.rcpt_tos == [owner.email]
    assert len(server.messages) == 1


def test_the_notice_is_sent_even_while_sending_is_switched_off(
    server, relay, smtp_editor, owner, client, trust
):
    trust(server.port)
    configure(server, enabled=None)
    server.clear()
    client.force_login(smtp_editor)

    post_settings(
        client,
        port=str(relay.port),
        password=ATTACKER_PASSWORD,
        confirm_password="pw",
        enabled=None,
    )

    [notice] = server.wait_for_messages(1)
    assert notice.message["Subject"] == NOTICE
    assert owner.email in notice.rcpt_tos


def test_the_first_setup_tells_the_owners_through_the_new_server(server, owner, trust):
    trust(server.port)

    configure(server)

    [notice] = server.wait_for_messages(1)
    assert notice.message["Subject"] == NOTICE
    assert notice.rcpt_tos == [owner.email]
    assert "Before: none" in notice.message.get_content()


def test_the_audit_log_records_the_target_old_and_new_without_secrets(
    live, server, relay, smtp_editor, client
):
    client.force_login(smtp_editor)

    post_settings(client, port=str(relay.port), password=ATTACKER_PASSWORD, confirm_password="pw")

    entry = ModelLogEntry.objects.filter(action="wagtail_icarus_smtp.credentials_changed").latest(
        "pk"
    )
    assert entry.user == smtp_editor
    assert entry.data["old"] == {"host": "localhost", "port": server.port, "email": MAILBOX}
    assert entry.data["new"] == {"host": "localhost", "port": relay.port, "email": MAILBOX}
    assert entry.data["fields"] == ["password", "port"]
    text = repr(list(ModelLogEntry.objects.values_list("data", flat=True)))
    for secret in (PASSWORD, ATTACKER_PASSWORD, "pw'"):
        assert secret not in text


# -- "Resend" never goes to a new server silently ----------------------------------------


@pytest.fixture
def sent_before(live, server, settings):
    """A message delivered through the first server (a reset link, say)."""
    from django.core.mail import send_mail

    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    with committed():
        send_mail("Ihr Link", "https://example.com/reset/abc", None, ["kunde@example.com"])
    server.wait_for_messages(1)
    return OutboxMessage.objects.get(subject="Ihr Link")


def test_resending_through_a_changed_server_needs_a_confirmation_naming_it(
    sent_before, server, relay, smtp_editor, client
):
    assert sent_before.sent_via == f"{MAILBOX} @ localhost:{server.port}"
    client.force_login(smtp_editor)
    post_settings(client, port=str(relay.port), password=ATTACKER_PASSWORD, confirm_password="pw")
    new_server = f"{MAILBOX} @ localhost:{relay.port}"
    url = reverse("wagtail_icarus_smtp_outbox:resend", args=[sent_before.pk])

    # A plain POST (what the old button did) sends nothing.
    with committed():
        refused = client.post(url, follow=True)
    assert "The mail server has changed since you confirmed" in refused.content.decode()
    assert OutboxMessage.objects.get(pk=sent_before.pk).status == "sent"

    page = client.get(url).content.decode()
    assert f"It will be sent through <strong>{new_server}</strong>" in page
    assert "This is not the mail server it was sent through" in page
    assert f"({MAILBOX} @ localhost:{server.port})" in page

    with committed():
        client.post(url, {"server": new_server})
    assert relay.wait_for_messages(1)[0].message["Subject"] == "Ihr Link"


def test_a_confirmation_for_another_server_sends_nothing(
    sent_before, server, relay, smtp_editor, client
):
    """Confirmed while the old server was live, posted after the change: refused."""
    client.force_login(smtp_editor)
    url = reverse("wagtail_icarus_smtp_outbox:resend", args=[sent_before.pk])
    old_server = re.search(r'name="server" value="([^"]+)"', client.get(url).content.decode())
    post_settings(client, port=str(relay.port), password=ATTACKER_PASSWORD, confirm_password="pw")

    with committed():
        client.post(url, {"server": old_server.group(1).replace("&#x27;", "'")})

    assert OutboxMessage.objects.get(pk=sent_before.pk).status == "sent"
    assert relay.messages == []


def test_release_and_resend_are_rate_limited_per_user(
    sent_before, server, smtp_editor, client, settings
):
    settings.ICARUS_SMTP_RATE_LIMITS = {"outbox": (1, 100, 600)}
    client.force_login(smtp_editor)
    url = reverse("wagtail_icarus_smtp_outbox:resend", args=[sent_before.pk])
    name = f"{MAILBOX} @ localhost:{server.port}"

    with committed():
        client.post(url, {"server": name})
    server.wait_for_messages(2)
    with committed():
        response = client.post(url, {"server": name}, follow=True)

    assert "Too many attempts" in response.content.decode()
    assert len(server.messages) == 2
