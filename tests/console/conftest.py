"""The console's tests run in a real headless Chromium driven by Playwright.

The browser is found (or installed) by `tests/browser.py`; where there is none
the tests skip and say why. Each page's screenshot goes to SCREENSHOTS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.browser import LAUNCH_ARGS, find, install
from tests.harness import GatewayServer

# Written by every run of the suite; two of them are copied into docs/.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "console-screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find()
    if path is None:
        path, why = install()
        if path is None:
            pytest.skip(f"NO BROWSER: the console's browser tests cannot run: {why}")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One browser per module: Playwright's sync API runs an event loop in this
    thread while it is open, which the suite's async tests in the same worker
    could not run beside, so it is closed when the module's tests are done."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=list(LAUNCH_ARGS))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at 1280x800. An uncaught script error
    on any page fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

    def on_console(message: ConsoleMessage) -> None:
        # A refused request is logged by the browser itself; the tests check those.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    opened.on("console", on_console)
    yield opened
    context.close()
    assert not errors, errors


def sign_in(page: Page, gateway: GatewayServer, key: str | None = None) -> Page:
    """Sign in through the form, as an operator would, and wait for the overview."""
    page.goto(f"{gateway.base_url}/console/")
    page.get_by_label("Admin key").fill(key or gateway.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav a[data-page=overview]")
    return page


def open_page(page: Page, name: str) -> Page:
    """Go to one of the console's pages by its link and wait until it has drawn."""
    page.locator(f"#nav a[data-page={name}]").click()
    page.wait_for_selector(f"[data-page={name}] h1")
    return page


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def csrf_fetch(page: Page, method: str, path: str, body: object | None = None) -> dict[str, object]:
    """A write from the signed-in console page itself, with its CSRF token:
    {"status": ..., "body": ...}."""
    result: dict[str, object] = page.evaluate(
        """async ([method, path, body]) => {
            const session = await (await fetch("/console/session")).json();
            const init = {method, headers: {"x-console-csrf": session.csrf}};
            if (body !== null) {
                init.body = JSON.stringify(body);
                init.headers["content-type"] = "application/json";
            }
            const r = await fetch(path, init);
            return {status: r.status, body: await r.json()};
        }""",
        [method, path, body],
    )
    return result
