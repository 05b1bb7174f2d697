"""Issue 13, "Editors": what a new editor tripped over, walked again in a real browser
(German admin, Chromium) as a non-superuser editor who holds only the SMTP permission.

Screenshots go to test-artifacts/ (copies in docs/screenshots/, shown in the README).
"""

import re

import pytest
from django.core import mail
from django_q.conf import Conf
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD as EDITOR_PASSWORD
from tests.browser.conftest import login, screenshot
from tests.utils import committed, configure, submit
from wagtail_icarus_smtp import outbox, tasks
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS_PATH = "/admin/settings/wagtail_icarus_smtp/smtpsettings/"
OUTBOX_PATH = "/admin/icarus-smtp/outbox/"
HISTORY_PATH = "/admin/icarus-smtp/history/"


def open_settings(page, live_server):
    page.goto(live_server.url + SETTINGS_PATH)
    expect(status_bar(page)).to_be_visible()


def status_bar(page):
    return page.locator("[data-icarus-smtp-status]")


def badge(page):
    return status_bar(page).locator("[data-field=sending]")


def save(page):
    page.locator("form button[type=submit]").filter(has_text="Speichern").first.click()
    page.wait_for_load_state()


def field(page, name):
    return page.locator(f"[name={name}]")


def messages(page):
    return page.locator(".messages")


def failed_draft(server, editor):
    """Working settings, then a draft with a wrong password (its test failed)."""
    configure(server, user=editor, confirm_password=EDITOR_PASSWORD)
    submit(
        user=editor,
        confirm_password=EDITOR_PASSWORD,
        port=str(server.port),
        password="falsches-passwort",
    )
    assert SmtpSettings.load().status == "failed"


# -- 1 -------------------------------------------------------------------------------------


def test_waiting_mail_is_visible_on_the_page_the_badge_the_banner_and_the_dashboard(
    page, live_server, german_editor, server, settings
):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    # The very first setup fails while the switch is on: nothing can go out.
    submit(
        user=german_editor,
        confirm_password=EDITOR_PASSWORD,
        port=str(server.port),
        password="falsches-passwort",
        enabled="on",
    )
    with committed():
        mail.send_mail("Buchung Tandem", "Text", None, ["anna@example.com"])
        mail.send_mail("Buchung AFF", "Text", None, ["bernd@example.com"])
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    expect(badge(page)).to_have_text(
        re.compile(r"SMTP-Mailversand:\s+Aktiviert, aber noch kein Versand möglich · 2 warten")
    )
    expect(badge(page)).not_to_have_class(re.compile("icarus-smtp-sending--on"))
    note = status_bar(page).locator("[data-field=sending_note_row]")
    expect(note).to_be_visible()
    expect(note).to_contain_text("noch keine E-Mail versendet werden")
    expect(note).to_contain_text("2 E-Mails warten auf den Versand.")
    screenshot(page, "12-wartende-e-mails", locator=status_bar(page))

    page.goto(f"{live_server.url}/admin/")
    banner = page.locator("[data-icarus-smtp-banner]")
    expect(banner).to_contain_text("noch keine E-Mail versendet werden")
    expect(banner).to_contain_text("2 E-Mails warten auf den Versand.")
    panel = page.locator("#icarus-smtp-status-section")
    expect(panel).to_contain_text("Aktiviert, aber noch kein Versand möglich · 2 warten")
    screenshot(page, "13-dashboard-wartende-e-mails")


def test_switched_off_the_page_never_says_mail_can_be_sent(
    page, live_server, german_editor, server
):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD, enabled=None)
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    expect(badge(page)).to_contain_text("Deaktiviert")
    expect(status_bar(page)).not_to_contain_text("E-Mail-Versand möglich")
    expect(status_bar(page)).to_contain_text("Der Versand ist ausgeschaltet")


# -- 2 -------------------------------------------------------------------------------------


def test_saving_tells_the_truth_and_a_failed_draft_can_be_discarded(
    page, live_server, german_editor, server, monkeypatch
):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD)
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    monkeypatch.setattr(Conf, "SYNC", False)  # queued: the page shows the test running
    field(page, "password").fill("falsches-passwort")
    save(page)
    expect(messages(page)).to_contain_text("Gespeichert \u2013 die Verbindung wird getestet.")
    expect(messages(page)).not_to_contain_text("aktualisiert")
    expect(status_bar(page)).to_contain_text("Einrichtung läuft")

    smtp_settings = SmtpSettings.load()
    tasks.validate_settings(smtp_settings.pk, smtp_settings.version)  # the worker's part
    expect(status_bar(page)).to_contain_text("Einrichtung fehlgeschlagen", timeout=30_000)
    draft_tag = status_bar(page).locator("[data-field=draft_tag]")
    expect(draft_tag).to_be_visible()
    expect(draft_tag).to_have_text("Entwurf \u2013 nicht in Gebrauch")
    discard = page.get_by_role(
        "link", name="Entwurf verwerfen und zu den Einstellungen in Gebrauch zurückkehren"
    )
    expect(discard).to_be_visible()
    screenshot(page, "14-entwurf-nicht-in-gebrauch", locator=status_bar(page))

    discard.click()
    expect(page.locator("main")).to_contain_text("nicht in Gebrauch ist")
    page.get_by_role("button", name="Ja, Entwurf verwerfen").click()
    page.wait_for_load_state()
    expect(messages(page)).to_contain_text("Der Entwurf wurde verworfen")
    expect(status_bar(page)).to_contain_text("Einrichtung abgeschlossen")
    expect(draft_tag).to_be_hidden()
    assert SmtpSettings.load().status == "complete"


# -- 4 and 9 (focus) -----------------------------------------------------------------------


def test_the_test_email_tests_the_failed_draft_and_appears_in_the_delivery_log(
    page, live_server, german_editor, server
):
    failed_draft(server, german_editor)
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    page.locator("[data-icarus-testmail-to]").fill("kunde@example.org")
    page.locator("[data-icarus-testmail-send]").click()
    result = page.locator("[data-icarus-testmail-result]")
    expect(result).to_contain_text("konnte nicht an kunde@example.org gesendet werden")
    expect(result).to_contain_text("Authentifizierung fehlgeschlagen")
    expect(result).to_contain_text(
        "Getestet mit den Einstellungen auf dieser Seite, die gerade eingerichtet werden"
    )
    expect(result).to_be_focused()  # keyboard and screen readers land on the result
    screenshot(page, "15-test-e-mail-entwurf", locator=page.locator("[data-icarus-testmail]"))
    assert server.messages == []

    page.goto(live_server.url + OUTBOX_PATH)
    row = page.locator("table.listing tbody tr").filter(has_text="Test-E-Mail von")
    expect(row).to_contain_text("Fehlgeschlagen (Test-E-Mail)")
    expect(row).to_contain_text("kunde@example.org")
    screenshot(page, "16-versandprotokoll-test-e-mail")


def test_the_test_email_works_while_sending_is_off(page, live_server, german_editor, server):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD, enabled=None)
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    expect(page.locator("[data-icarus-testmail-send]")).to_be_enabled()
    page.locator("[data-icarus-testmail-send]").click()
    result = page.locator("[data-icarus-testmail-result]")
    expect(result).to_contain_text("Die Test-E-Mail wurde an redaktion@dropzone.example gesendet.")
    expect(result).to_contain_text("Einstellungen, die für die E-Mails der Website in Gebrauch")
    assert server.wait_for_messages(1)[0].rcpt_tos == ["redaktion@dropzone.example"]
    assert OutboxMessage.objects.get().is_test


# -- 5 -------------------------------------------------------------------------------------


def test_switching_sending_off_and_on_is_history(page, live_server, german_editor, server):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD)
    login(page, live_server, german_editor)
    open_settings(page, live_server)
    history = page.locator("[data-icarus-smtp-history] tbody tr")

    page.locator("label.switch").click()
    save(page)
    expect(history.first).to_contain_text("SMTP-Mailversand ausgeschaltet")
    expect(history.first).to_contain_text("redakteurin")
    page.locator("label.switch").click()
    save(page)
    expect(history.first).to_contain_text("SMTP-Mailversand eingeschaltet")
    expect(history.nth(1)).to_contain_text("SMTP-Mailversand ausgeschaltet")

    page.goto(live_server.url + HISTORY_PATH)
    rows = page.locator("table.listing tbody tr")
    expect(rows.first).to_contain_text("SMTP-Mailversand eingeschaltet")
    expect(rows.first).to_contain_text("Rita")  # Wagtail's user column: the name
    expect(rows.nth(1)).to_contain_text("SMTP-Mailversand ausgeschaltet")
    screenshot(page, "17-verlauf-schalter")


# -- 8 -------------------------------------------------------------------------------------

LONG_SUBJECT = "Ihre Buchungsbestätigung für den Tandemsprung am Samstag"
LONG_REPLY = "450 4.2.1 The user you are trying to contact is receiving mail too quickly"

# How many lines the element's text takes (distinct tops of its text's line boxes).
LINES_JS = """(element) => {
    const tops = new Set();
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const rect of range.getClientRects()) tops.add(Math.round(rect.top));
    }
    return tops.size;
}"""

REACH_LAST_COLUMN_JS = """(table) => {
    const scroller = table.scrollWidth > table.clientWidth ? table : table.parentElement;
    scroller.scrollLeft = scroller.scrollWidth;
    const last = table.querySelector("thead th:last-child").getBoundingClientRect();
    return { left: last.left, right: last.right, viewport: window.innerWidth };
}"""


def assert_reachable_on_a_phone(page, table, cell):
    """The cell's text stays on one line; the last column can be scrolled into view."""
    assert cell.evaluate(LINES_JS) <= 1, "the text wraps inside a squeezed column"
    box = table.evaluate(REACH_LAST_COLUMN_JS)
    # Scrolled to the end, the last column's end is on screen (it may be wider than it).
    assert box["left"] < box["viewport"] and 0 < box["right"] <= box["viewport"] + 1, box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 391, f"the page itself scrolls sideways ({width}px)"


def test_delivery_log_and_history_fit_a_phone(page, live_server, german_editor, server):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD)
    submit(user=german_editor, port=str(server.port), password="falsch")  # a failure row
    envelope = outbox.Envelope("<a@test>", LONG_SUBJECT, "", False, ["anna@example.com"], b"x")
    [row] = outbox.accept([envelope], held=True)
    OutboxMessage.objects.filter(pk=row.pk).update(
        status="deferred", attempts=2, last_category="protocol", last_reply=LONG_REPLY
    )
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, german_editor)

    page.goto(live_server.url + OUTBOX_PATH)
    table = page.locator("table.listing")
    subject = table.get_by_role("link", name=LONG_SUBJECT)
    expect(subject).to_be_visible()
    screenshot(page, "18-handy-versandprotokoll")
    assert_reachable_on_a_phone(page, table, subject)

    page.goto(live_server.url + HISTORY_PATH)
    table = page.locator("table.listing")
    screenshot(page, "19-handy-verlauf")
    assert_reachable_on_a_phone(page, table, table.locator("tbody tr td").first)

    open_settings(page, live_server)
    history = page.locator("[data-icarus-smtp-history] table")
    assert_reachable_on_a_phone(page, history, history.locator("tbody tr td").first)


# -- 9 -------------------------------------------------------------------------------------


def test_screen_readers_hear_cause_and_fix_and_the_provider_suggestion(
    page, live_server, german_editor, server
):
    failed_draft(server, german_editor)
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    # The failure's cause and fix sit in a live region, announced when they change.
    live = status_bar(page).locator("[data-icarus-smtp-live]")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_contain_text("Authentifizierung fehlgeschlagen")
    expect(live).to_contain_text("Lösung:")
    # The fields it is about describe themselves with it; the others do not.
    for name in ("email", "password"):
        expect(field(page, name)).to_have_accessible_description(
            re.compile("Authentifizierung fehlgeschlagen.*Lösung:", re.S)
        )
    expect(field(page, "host")).not_to_have_accessible_description(
        re.compile("Authentifizierung fehlgeschlagen")
    )
    expect(page.get_by_role("status").filter(has_text="Einrichtung fehlgeschlagen")).to_be_visible()

    # The provider suggestion appears inside a live region (role "status").
    field(page, "email").fill("sprung@gmail.com")
    suggestion = page.get_by_role("status").filter(has_text="Mailbox bei Gmail")
    expect(suggestion).to_be_visible()
    expect(page.get_by_role("button", name="Diese Einstellungen übernehmen")).to_be_visible()

    # The test e-mail: named controls; the result is a live region and takes the focus.
    to = page.get_by_role("textbox", name="Empfänger")
    expect(to).to_have_value("redaktion@dropzone.example")
    page.get_by_role("button", name="Test-E-Mail senden").click()
    result = page.get_by_role("status").filter(has_text="Test-E-Mail konnte nicht")
    expect(result).to_be_focused()
    snapshot = status_bar(page).aria_snapshot()
    assert "Einrichtung fehlgeschlagen" in snapshot and "Lösung:" in snapshot


# -- 7 (the page's part) -------------------------------------------------------------------


def test_other_provider_clears_the_preset_and_a_typed_port_moves_to_its_field(
    page, live_server, german_editor
):
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    field(page, "provider").select_option(label="Gmail")
    expect(field(page, "host")).to_have_value("smtp.gmail.com")
    field(page, "provider").select_option(label="Anderer Anbieter")
    expect(field(page, "host")).to_have_value("")
    expect(field(page, "port")).to_have_value("")

    field(page, "host").fill("smtp.ionos.de:465")
    field(page, "host").blur()
    expect(field(page, "host")).to_have_value("smtp.ionos.de")
    expect(field(page, "port")).to_have_value("465")
