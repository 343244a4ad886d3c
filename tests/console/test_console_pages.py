"""Every page of the console: it draws without an error, every control it shows
has a label, and its screenshot is taken at 1280x800 and at a phone's width."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer

PAGES = ("overview", "models", "providers", "router", "users", "budgets", "usage")

# Controls without a name a screen reader could announce.
UNLABELLED = """() => [...document.querySelectorAll(
        "#page input, #page select, #page textarea, #page button")]
    .filter(el => el.offsetParent !== null && el.type !== "hidden")
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
        && !el.getAttribute("aria-labelledby")
        && !(el.tagName === "BUTTON" && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 120))"""


def traffic(gw: GatewayServer) -> None:
    """A few requests, so that the overview and usage pages have something to draw."""
    for model, count in (("mock-1", 5), ("gpt-4o-mini-2024-07-18", 3), ("no-such-model", 1)):
        for n in range(count):
            httpx.post(
                f"{gw.base_url}/v1/chat/completions",
                headers={"authorization": f"Bearer {gw.demo_key}"},
                json={"model": model, "messages": [{"role": "user", "content": f"hello {n}"}]},
            )


def test_every_page_draws_with_labelled_controls(module_gateway: GatewayServer, page: Page):
    traffic(module_gateway)
    sign_in(page, module_gateway)
    links = page.locator("#nav a").evaluate_all("links => links.map(a => a.dataset.page)")
    assert tuple(links) == PAGES
    for name in PAGES:
        open_page(page, name)
        expect(page.locator("#nav a[aria-current=page]")).to_have_attribute("data-page", name)
        expect(page.locator(f"[data-page={name}] .error-box")).to_have_count(0)
        assert page.evaluate(UNLABELLED) == [], name
        screenshot(page, f"page-{name}")
        screenshot(page, f"page-{name}-viewport", full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    for name in PAGES:
        open_page(page, name)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{name} scrolls sideways on a phone: {width} px"
        screenshot(page, f"page-{name}-phone")
