"""An editor finishes the SMTP setup alone, in a real browser, in German."""

import re
import time

import pytest
from django.core.mail import EmailMessage
from django.urls import reverse
from django_q.conf import Conf
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD as EDITOR_PASSWORD
from tests.browser.conftest import login, screenshot
from tests.conftest import MAILBOX, PASSWORD
from tests.utils import committed, configure, submit
from wagtail_icarus_smtp import tasks
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS_PATH = "/admin/settings/wagtail_icarus_smtp/smtpsettings/"


def open_settings(page, live_server):
    page.goto(live_server.url + SETTINGS_PATH)
    expect(page.locator("[data-icarus-smtp-status]")).to_be_visible()


def status_bar(page):
    return page.locator("[data-icarus-smtp-status]")


def save(page):
    page.locator("form button[type=submit]").filter(has_text="Speichern").first.click()
    page.wait_for_load_state()


def field(page, name):
    return page.locator(f"[name={name}]")


@pytest.mark.qcluster
def test_editor_sets_up_sends_a_test_mail_and_pauses_sending(
    page, live_server, german_editor, server, trust, qcluster, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", False)  # the save enqueues; the worker tests
    trust(587)  # the presets' port, besides the test server's own
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    # Nothing stored yet: every required field is framed red, with a message.
    expect(status_bar(page)).to_contain_text("Nicht eingerichtet")
    screenshot(page, "01-nicht-eingerichtet")

    # A partial save is allowed; the fields still missing stay red after the reload.
    # Where mail goes is an owner's decision: a changed address asks for her own
    # admin password (the field shows up only then).
    expect(field(page, "confirm_password")).to_be_hidden()
    field(page, "email").fill(MAILBOX)
    expect(field(page, "confirm_password")).to_be_visible()
    field(page, "confirm_password").fill(EDITOR_PASSWORD)
    save(page)
    expect(status_bar(page)).to_contain_text("Einrichtung begonnen")
    for name in ("password", "host"):
        expect(field(page, name)).to_have_attribute("aria-invalid", "true")
        described_by = field(page, name).get_attribute("aria-describedby")
        error_id = next(part for part in described_by.split() if part.endswith("-errors"))
        expect(page.locator(f"#{error_id}")).to_contain_text("Pflichtfeld")
        expect(page.locator(f"#{error_id}").locator("xpath=..")).to_have_class(
            re.compile("w-field--error")
        )
    expect(field(page, "email")).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "02-einrichtung-begonnen-rote-rahmen")

    # A preset fills server and port and says what Gmail needs.
    field(page, "provider").select_option(label="Gmail")
    expect(field(page, "host")).to_have_value("smtp.gmail.com")
    expect(field(page, "port")).to_have_value("587")
    expect(page.locator("[data-icarus-provider-hint]")).to_contain_text("App-Passwort")

    # This test's server stands in for the provider.
    field(page, "provider").select_option(label="Anderer Anbieter")
    field(page, "host").fill("localhost")
    field(page, "port").fill(str(server.port))
    field(page, "password").fill(PASSWORD)
    field(page, "from_name").fill("Dropzone Musterstadt")
    field(page, "confirm_password").fill(EDITOR_PASSWORD)
    page.locator("label.switch").click()
    save(page)

    # The bar shows the running test, then the result — without a reload.
    expect(status_bar(page)).to_contain_text("Einrichtung läuft")
    page.evaluate("window.icarusSamePage = true")
    screenshot(page, "03-einrichtung-laeuft", locator=status_bar(page))
    expect(status_bar(page)).to_contain_text("Einrichtung abgeschlossen", timeout=60_000)
    assert page.evaluate("window.icarusSamePage") is True
    polls = []
    page.on("request", lambda request: "/status/" in request.url and polls.append(request.url))
    page.wait_for_timeout(4000)
    assert polls == [], "the page keeps polling after the final state"
    expect(status_bar(page)).to_contain_text("SMTP-Mailversand: Aktiviert")
    expect(status_bar(page)).to_contain_text("Letzter Test")
    expect(page.locator("[data-icarus-smtp-history] tbody tr").first).to_contain_text(
        "Einrichtung abgeschlossen"
    )
    screenshot(page, "04-einrichtung-abgeschlossen")

    # The test e-mail goes to the editor's own address by default; the transcript shows.
    page.reload()
    to = page.locator("[data-icarus-testmail-to]")
    expect(to).to_have_value("redaktion@dropzone.example")
    to.fill("kunde@example.org")
    page.locator("[data-icarus-testmail-send]").click()
    result = page.locator("[data-icarus-testmail-result]")
    expect(result).to_contain_text("Die Test-E-Mail wurde an kunde@example.org gesendet.")
    transcript = page.locator("[data-field=testmail_transcript]")
    expect(transcript).to_contain_text("STARTTLS", ignore_case=True)
    expect(transcript).to_contain_text("Zugangsdaten verborgen")
    assert PASSWORD not in transcript.inner_text()
    received = server.wait_for_messages(1)[0]
    assert received.rcpt_tos == ["kunde@example.org"]
    assert received.message["From"] == f"Dropzone Musterstadt <{MAILBOX}>"
    assert received.message["Subject"].startswith("Test-E-Mail von")
    screenshot(page, "05-test-e-mail", locator=page.locator("[data-icarus-testmail]"))

    # Switching off shows the seed's warning; once saved, every admin page says so.
    page.locator("label.switch").click()
    warning = page.locator("[data-icarus-switch-warning]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("keine Buchungsbestätigungen")
    screenshot(page, "06-mailversand-aus-warnung", locator=page.locator("[data-icarus-switch]"))
    save(page)
    expect(status_bar(page)).to_contain_text("SMTP-Mailversand: Deaktiviert")
    page.goto(f"{live_server.url}/admin/")
    banner = page.locator("[data-icarus-smtp-banner]")
    expect(banner).to_contain_text("SMTP-Mailversand ist ausgeschaltet")
    expect(page.locator("#icarus-smtp-status-section")).to_contain_text("Einrichtung abgeschlossen")
    screenshot(page, "07-dashboard-banner")
    assert SmtpSettings.load().enabled is False


def test_failed_test_keeps_the_last_working_settings(page, live_server, german_editor, server):
    configure(server, user=german_editor, confirm_password=EDITOR_PASSWORD)
    time.sleep(0.01)
    submit(
        user=german_editor,
        confirm_password=EDITOR_PASSWORD,
        port=str(server.port),
        password="falsches-passwort",
    )
    login(page, live_server, german_editor)
    open_settings(page, live_server)

    bar = status_bar(page)
    expect(bar).to_contain_text("Einrichtung fehlgeschlagen")
    expect(bar).to_contain_text("Authentifizierung fehlgeschlagen")
    expect(bar).to_contain_text("Zugangsdaten erneut eingeben")
    expect(bar).to_contain_text("weiterhin mit den zuletzt funktionierenden Einstellungen")
    expect(bar).to_contain_text("535")
    screenshot(page, "08-einrichtung-fehlgeschlagen")

    page.get_by_role("link", name="Gesamter Verlauf").click()
    expect(page.locator("table.listing")).to_contain_text("Einrichtung fehlgeschlagen")
    screenshot(page, "09-verlauf")


def test_the_status_bar_asks_nothing_while_the_tab_is_hidden(
    page, live_server, german_editor, server, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", False)  # queued, no worker: the test stays running
    submit(user=german_editor, confirm_password=EDITOR_PASSWORD, port=str(server.port))
    login(page, live_server, german_editor)
    open_settings(page, live_server)
    expect(status_bar(page)).to_contain_text("Einrichtung läuft")
    status_url = live_server.url + status_bar(page).get_attribute(
        "data-icarus-smtp-status-url-value"
    )

    def is_poll(request):
        return request.url == status_url

    asked = []
    page.on("request", lambda request: asked.append(request.url) if is_poll(request) else None)
    page.wait_for_timeout(2000)
    assert asked  # polling while visible

    page.evaluate(VISIBILITY_JS, True)
    page.wait_for_timeout(500)  # a request already on its way may still finish
    before = len(asked)
    page.wait_for_timeout(4000)  # more than two polling intervals
    assert len(asked) == before

    with page.expect_request(is_poll, timeout=5000):
        page.evaluate(VISIBILITY_JS, False)
    expect(status_bar(page)).to_contain_text("Einrichtung läuft")


#: The Stimulus controllers of the settings page, each on the element that names it.
CONTROLLERS = [
    "icarus-smtp-status",
    "icarus-smtp-history",
    "icarus-smtp-provider",
    "icarus-smtp-auth-method",
    "icarus-smtp-confirm",
    "icarus-smtp-required",
    "icarus-smtp-switch",
    "icarus-smtp-testmail",
    "icarus-smtp-deliverability",
]

CONNECTED_JS = """(names) => names.filter((name) => {
    const element = document.querySelector(`[data-controller~="${name}"]`);
    return !element || !window.wagtail.app.getControllerForElementAndIdentifier(element, name);
})"""


def test_the_controllers_swap_in_the_status_fragment_when_the_test_ends(
    page, live_server, german_editor, server, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", False)  # queued: the page shows the test running
    submit(user=german_editor, confirm_password=EDITOR_PASSWORD, port=str(server.port))
    login(page, live_server, german_editor)
    open_settings(page, live_server)
    expect(status_bar(page)).to_contain_text("Einrichtung läuft")
    assert page.evaluate(CONNECTED_JS, CONTROLLERS) == [], "controllers not connected"
    history = page.locator("[data-icarus-smtp-history] tbody tr")
    expect(history.filter(has_text="Einrichtung läuft")).to_have_count(1)
    expect(history.filter(has_text="Einrichtung abgeschlossen")).to_have_count(0)
    page.evaluate("window.icarusSamePage = true")

    fragments = []
    page.on(
        "response",
        lambda response: (
            "/status/fragment/" in response.url
            and fragments.append(response.headers.get("content-type", ""))
        ),
    )
    smtp_settings = SmtpSettings.load()
    tasks.validate_settings(smtp_settings.pk, smtp_settings.version)  # the worker's part

    # Bar, history and the test e-mail follow — without a reload, from server HTML.
    expect(status_bar(page)).to_contain_text("Einrichtung abgeschlossen", timeout=30_000)
    expect(status_bar(page)).to_contain_text("Letzter Test")
    expect(history.filter(has_text="Einrichtung abgeschlossen")).to_have_count(1)
    expect(page.locator("[data-icarus-testmail-send]")).to_be_enabled()
    assert page.evaluate("window.icarusSamePage") is True
    assert fragments and all(kind.startswith("text/html") for kind in fragments)
    # The replaced bar is still the same controller's element, and it stopped asking.
    assert page.evaluate(CONNECTED_JS, CONTROLLERS) == []
    asked = len(fragments)
    page.wait_for_timeout(3500)
    assert len(fragments) == asked


# The page believes it is hidden or shown again (what switching tabs does).
VISIBILITY_JS = """(hidden) => {
    Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
    Object.defineProperty(document, "visibilityState", {
        value: hidden ? "hidden" : "visible", configurable: true,
    });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_mail_held_while_off_is_listed_and_goes_out_when_switched_on(
    page, live_server, german_editor, server
):
    configure(
        server, user=german_editor, confirm_password=EDITOR_PASSWORD, enabled=None
    )  # works, but sending is off
    with committed():
        bookings = [
            EmailMessage(f"Buchung {i}", "Danke!", None, [f"kunde{i}@example.org"]) for i in (1, 2)
        ]
        EmailBackend().send_messages(bookings)
    login(page, live_server, german_editor)
    open_settings(page, live_server)
    expect(status_bar(page)).to_contain_text("2 E-Mails warten auf den Versand")

    status_bar(page).get_by_role("link", name="Versandprotokoll").click()
    listing = page.locator("table.listing")
    expect(listing).to_contain_text("kunde1@example.org")
    expect(listing).to_contain_text("kunde2@example.org")
    expect(listing.locator("tbody tr")).to_have_count(2)
    expect(listing).to_contain_text("Zurückgehalten")
    expect(page.locator("main")).to_contain_text("2 ausgehende E-Mails")
    banner = page.locator("[data-icarus-smtp-banner]")
    expect(banner).to_contain_text("SMTP-Mailversand ist ausgeschaltet")
    screenshot(page, "10-versandprotokoll-zurueckgehalten")
    assert server.messages == []

    # Switching sending on delivers what waited, exactly once each.
    open_settings(page, live_server)
    page.locator("label.switch").click()
    save(page)
    expect(status_bar(page)).to_contain_text("SMTP-Mailversand: Aktiviert")
    received = server.wait_for_messages(2)
    assert sorted(m.message["Subject"] for m in received) == ["Buchung 1", "Buchung 2"]

    page.goto(live_server.url + reverse("wagtail_icarus_smtp_outbox:index"))
    expect(listing.locator("tbody tr")).to_have_count(2)
    expect(listing).not_to_contain_text("Zurückgehalten")
    expect(listing).to_contain_text("Versendet")
    listing.get_by_role("link", name="Buchung 1").click()
    expect(page.locator("h1")).to_contain_text("Buchung 1")
    expect(page.locator("main")).to_contain_text("kunde1@example.org — Versendet")
    screenshot(page, "11-versandprotokoll-nachricht")
    page.get_by_role("link", name="Zurück zum Versandprotokoll").click()
    expect(listing.locator("tbody tr")).to_have_count(2)
    assert len(server.messages) == 2
