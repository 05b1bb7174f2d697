"""Issue 11.6 (the page's part): picking a provider fills in its documented send limit."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.browser.test_editor_walk import field, open_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_preset_fills_in_the_providers_send_limit(page, live_server, german_editor):
    login(page, live_server, german_editor)
    open_settings(page, live_server)
    expect(page.get_by_label("Max. E-Mails")).to_be_visible()

    field(page, "provider").select_option(label="IONOS / 1&1")
    expect(field(page, "send_limit")).to_have_value("500")
    expect(field(page, "send_limit_period")).to_have_value("hour")

    field(page, "provider").select_option(label="Microsoft 365")
    expect(field(page, "send_limit")).to_have_value("30")
    expect(field(page, "send_limit_period")).to_have_value("minute")

    field(page, "provider").select_option(label="Gmail")  # no hourly limit documented
    expect(field(page, "send_limit")).to_have_value("")
