"""The "Zustellbarkeit" panel in a real browser, in German: what is missing, the record
to copy, and "Neu prüfen" once the editor has added it at her DNS provider."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD as EDITOR_PASSWORD
from tests.browser.conftest import login, screenshot
from tests.utils import configure
from wagtail_icarus_smtp import tasks
from wagtail_icarus_smtp.models import SmtpLiveConfiguration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS_PATH = "/admin/settings/wagtail_icarus_smtp/smtpsettings/"
DOMAIN = "dropzone.example"
SPF = "v=spf1 include:_spf-eu.ionos.com ~all"


def check(panel, name):
    return panel.locator(f'[data-check="{name}"]')


def test_editor_copies_the_missing_spf_record_and_checks_again(
    page, live_server, german_editor, server, dns_zone, chromium
):
    zone = dns_zone(
        {
            DOMAIN: {"MX": [(10, "mx00.ionos.de"), (10, "mx01.ionos.de")]},
            "_spf-eu.ionos.com": {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]},
        }
    ).zone
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD)
    SmtpLiveConfiguration.objects.update(host="smtp.ionos.de")  # an IONOS mailbox
    tasks.check_deliverability(force=True)
    chromium.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    login(page, live_server, german_editor)
    page.goto(live_server.url + SETTINGS_PATH)
    panel = page.locator("[data-icarus-deliverability]")
    expect(page.get_by_role("heading", name="Zustellbarkeit")).to_be_visible()
    expect(panel).to_contain_text(f"Domain {DOMAIN}, geprüft am")

    spf = check(panel, "spf")
    expect(spf).to_have_attribute("data-state", "fail")
    expect(spf).to_contain_text("✗")
    expect(spf).to_contain_text("Kein SPF-Eintrag")
    expect(spf).to_contain_text("Diesen Eintrag hinzufügen")
    expect(spf.locator('[data-field="host"]')).to_have_text(DOMAIN)
    expect(spf.locator('[data-field="type"]')).to_have_text("TXT")
    expect(spf.locator('[data-field="value"]')).to_have_text(SPF)
    dmarc = check(panel, "dmarc")
    expect(dmarc).to_have_attribute("data-state", "fail")
    expect(dmarc.locator('[data-field="value"]')).to_have_text(
        "v=DMARC1; p=none; rua=mailto:system@dropzone.example"
    )
    expect(check(panel, "dkim")).to_contain_text("Von außen nicht prüfbar")
    expect(check(panel, "mx")).to_contain_text("✓")
    page.set_viewport_size({"width": 1280, "height": 1600})  # the whole panel in view
    screenshot(page, "12-zustellbarkeit", locator=panel.locator("xpath=ancestor::section[1]"))

    # "Kopieren" puts the exact value on the clipboard.
    copy = spf.locator("[data-icarus-copy]").last
    copy.click()
    expect(copy).to_have_text("Kopiert")
    assert page.evaluate("navigator.clipboard.readText()") == SPF

    # She adds the record at her DNS provider and asks again.
    zone.records[DOMAIN]["TXT"] = [SPF]
    panel.get_by_role("button", name="Neu prüfen").click()
    expect(check(panel, "spf")).to_have_attribute("data-state", "pass")
    expect(check(panel, "spf")).to_contain_text("SPF-Eintrag gefunden")
    expect(check(panel, "dmarc")).to_have_attribute("data-state", "fail")
    expect(panel.get_by_role("button", name="Neu prüfen")).to_be_enabled()
