"""A real browser (Debian's Chromium through Playwright) against pytest-django's live server.

Without Chromium the browser tests are skipped on a developer machine, but FAIL in CI
(``CI`` set): CI must install it (``apt-get install -y chromium``).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.utils import german

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
# make between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("ICARUS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "Editor-Passw0rd"


def _require_chromium():
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="icarus-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        # Playwright refuses --user-data-dir in args: a persistent context is the same.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="de-DE",
            timezone_id="Europe/Berlin",
        )
        yield context
        context.close()


@pytest.fixture
def page(chromium):
    chromium.clear_cookies()
    page = chromium.new_page()
    page.set_default_timeout(20_000)
    yield page
    page.close()


@pytest.fixture
def german_editor(django_user_model):
    """An editor whose admin language is German, with an e-mail address of their own:
    not a superuser, she holds only "access admin" and the SMTP setting's permission."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user(
        "redakteurin", "redaktion@dropzone.example", PASSWORD, first_name="Rita"
    )
    group = Group.objects.create(name="Redaktion")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="change_smtpsettings"),
    )
    user.groups.add(group)
    return german(user)


def login(page, live_server, user, password=PASSWORD):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def screenshot(page, name, *, locator=None):
    """Save a screenshot under test-artifacts/ (gitignored); docs/screenshots has copies."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Wagtail's messages slide in: let finite animations and transitions end first
    # (the running state's spinner turns forever), waiting two seconds at most.
    page.evaluate(SETTLED_JS)
    if locator is not None:
        locator.screenshot(path=str(path))
        return path
    # The admin scrolls inside its layout, not the document: grow the window instead.
    size = page.viewport_size
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('main, .content-wrapper, body')]"
        ".map((element) => element.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 4000)})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path


SETTLED_JS = """() => Promise.race([
    Promise.all(
        document.getAnimations()
            .filter((animation) => animation.effect
                && animation.effect.getComputedTiming().endTime !== Infinity)
            .map((animation) => animation.finished.catch(() => null))
    ),
    new Promise((resolve) => setTimeout(resolve, 2000)),
])"""


@pytest.fixture(autouse=True)
def _wagtail_root_page(transactional_db):
    """The admin home needs the page tree that Wagtail's migrations create; an earlier
    transactional test flushes it away, so put a root and a home page back if missing."""
    from wagtail.models import Locale, Page, Site

    if Page.objects.filter(depth=1).exists():
        return
    Locale.objects.get_or_create(language_code="en")
    root = Page.add_root(instance=Page(title="Root", slug="root"))
    home = root.add_child(instance=Page(title="Home", slug="home"))
    Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)
