import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("LENS_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per module (Debian's package, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread; the ORM calls the tests
    # make between browser steps are ordinary blocking calls, so allow them here only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context that fails the test on any CSP violation or page error."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.lens_problems = []
    page.on("pageerror", lambda error: page.lens_problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: page.lens_problems.append(f"console: {message.text}")
        if message.type == "error" or "Content Security Policy" in message.text
        else None,
    )
    page.on("dialog", lambda dialog: (page.lens_problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()


def login(page, *, username="viewer", password="viewer-pass-123"):
    page.goto("/events/")
    assert "/login/" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/events/")
