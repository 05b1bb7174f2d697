"""Microsoft 365 and Google Workspace in the form: only the chosen method's fields show,
the Microsoft 365 preset picks OAuth, and a non-superuser editor completes the setup
against the local token endpoint and XOAUTH2 server (issue 10, points 2 and 8)."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD as EDITOR_PASSWORD
from tests.browser.conftest import login, screenshot
from tests.browser.test_settings_page import SETTINGS_PATH, field, save, status_bar
from tests.conftest import MAILBOX
from tests.oauthservers import CLIENT_ID, CLIENT_SECRET, TENANT
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD_FIELDS = ("password",)
MICROSOFT_FIELDS = (
    "oauth_tenant_id",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_secret_expires",
)
GOOGLE_FIELDS = ("google_service_account",)


def shown(page, visible, hidden):
    for name in visible:
        expect(field(page, name)).to_be_visible()
    for name in hidden:
        expect(field(page, name)).to_be_hidden()


def test_editor_signs_in_with_microsoft365_oauth(page, live_server, german_editor, xserver):
    login(page, live_server, german_editor)
    page.goto(live_server.url + SETTINGS_PATH)

    # Password is the default: only its field shows.
    expect(page.locator('[name=auth_method][value="password"]')).to_be_checked()
    shown(page, PASSWORD_FIELDS, MICROSOFT_FIELDS + GOOGLE_FIELDS)

    # The Microsoft 365 preset chooses OAuth and says why in one sentence.
    field(page, "provider").select_option(label="Microsoft 365")
    expect(page.locator('[name=auth_method][value="microsoft365"]')).to_be_checked()
    expect(page.locator("[data-icarus-provider-hint]")).to_contain_text("Dezember 2026")
    shown(page, MICROSOFT_FIELDS, PASSWORD_FIELDS + GOOGLE_FIELDS)

    # Google Workspace shows only the key; back to Microsoft 365.
    page.locator('[name=auth_method][value="google"]').check()
    shown(page, GOOGLE_FIELDS, PASSWORD_FIELDS + MICROSOFT_FIELDS)
    page.locator('[name=auth_method][value="microsoft365"]').check()

    field(page, "email").fill(MAILBOX)
    field(page, "host").fill("localhost")
    field(page, "port").fill(str(xserver.port))
    field(page, "oauth_tenant_id").fill(TENANT)
    field(page, "oauth_client_id").fill(CLIENT_ID)
    field(page, "oauth_client_secret").fill(CLIENT_SECRET)
    field(page, "oauth_secret_expires").fill("2028-06-30")
    close_date_picker(page)
    field(page, "confirm_password").fill(EDITOR_PASSWORD)
    field(page, "from_name").fill("Dropzone Musterstadt")
    screenshot(page, "oauth-microsoft365-ausgefuellt")
    close_date_picker(page)  # the full-page screenshot's resize can reopen it
    save(page)

    expect(status_bar(page)).to_contain_text("Einrichtung abgeschlossen", timeout=30_000)
    shown(page, MICROSOFT_FIELDS, PASSWORD_FIELDS + GOOGLE_FIELDS)
    expect(field(page, "oauth_client_secret")).to_have_value("")
    placeholder = field(page, "oauth_client_secret").get_attribute("placeholder")
    assert placeholder.startswith("Ein geheimer Clientschlüssel ist gespeichert.")
    assert CLIENT_SECRET not in page.content()
    screenshot(page, "oauth-microsoft365-abgeschlossen")

    live = SmtpSettings.load().live_config
    assert (live.auth_method, live.oauth_client_id) == ("microsoft365", CLIENT_ID)
    assert xserver.auth_attempts == 1


def close_date_picker(page):
    """Wagtail's date picker closes when the editor clicks elsewhere on the page. On a
    busy machine it can open late, after that click: wait until none is visible, and
    close a late one through the widget's own API (else it covers the save button)."""
    open_pickers = page.locator(".xdsoft_datetimepicker:visible")
    page.keyboard.press("Escape")
    page.mouse.click(5, 5)  # the page's corner, outside every field
    try:
        expect(open_pickers).to_have_count(0, timeout=3000)
    except AssertionError:
        page.evaluate("window.jQuery('[name=oauth_secret_expires]').datetimepicker('hide')")
        expect(open_pickers).to_have_count(0)
