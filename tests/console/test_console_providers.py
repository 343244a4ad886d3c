"""The providers page: the fallback order by drag and drop and by keyboard, and a
provider's API key in a write-only field."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from gateway.providers.vault import Vault
from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer

GATEWAY_ENV = {"GATEWAY_SECRET_KEY": Vault.new_secret_key()}
SECRET = "sk-ant-console-test-0123456789-WXYZ"


def providers(gw: GatewayServer) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{gw.base_url}/admin/providers", headers={"authorization": f"Bearer {gw.admin_key}"}
    )
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def fallback_order(gw: GatewayServer) -> list[str]:
    ranked = sorted(providers(gw), key=lambda p: (p["fallback_priority"], p["id"]))
    return [p["id"] for p in ranked]


def shown_order(page: Page) -> list[str]:
    ids: list[str] = page.locator("#provider-order li").evaluate_all(
        "items => items.map(li => li.dataset.provider)"
    )
    return ids


def test_dragging_a_provider_changes_the_fallback_order(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    open_page(sign_in(page, gw), "providers")
    before = fallback_order(gw)
    expect(page.locator("#provider-order li")).to_have_count(len(before))
    assert shown_order(page) == before
    screenshot(page, "providers")

    last, first = before[-1], before[0]
    page.locator(f"#provider-order li[data-provider='{last}']").drag_to(
        page.locator(f"#provider-order li[data-provider='{first}']")
    )
    expected = [last, *before[:-1]]
    expect(page.locator("#provider-order li").first).to_have_attribute("data-provider", last)
    assert fallback_order(gw) == expected
    assert shown_order(page) == expected
    priorities = {p["id"]: p["fallback_priority"] for p in providers(gw)}
    assert [priorities[i] for i in expected] == [10 * (n + 1) for n in range(len(expected))]

    # The keyboard does the same: the first provider moved one down.
    page.get_by_role("button", name=f"Move {last} down").click()
    expected = [expected[1], last, *expected[2:]]
    expect(page.locator("#provider-order li").nth(1)).to_have_attribute("data-provider", last)
    assert fallback_order(gw) == expected
    expect(page.get_by_role("button", name=f"Move {last} down")).to_be_focused()


def test_a_provider_key_is_write_only(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    open_page(sign_in(page, gw), "providers")
    state = page.locator("[data-key-state=anthropic]")
    expect(state).to_have_text("not set")
    page.get_by_label("New API key for anthropic").fill(SECRET)
    page.get_by_role("button", name="Save the API key of anthropic").click()
    expect(state).to_have_text("set, ending WXYZ")
    expect(page.get_by_label("New API key for anthropic")).to_have_value("")
    assert SECRET not in page.content()
    [anthropic] = [p for p in providers(gw) if p["id"] == "anthropic"]
    assert (anthropic["api_key"], anthropic["api_key_last4"]) == ("set", "WXYZ")
    stored = gw.query("SELECT api_key FROM providers WHERE id = 'anthropic'")[0][0]
    assert stored.startswith("fernet:") and SECRET not in stored
    screenshot(page, "providers-key-set")

    page.get_by_role("button", name="Clear the API key of anthropic").click()
    expect(state).to_have_text("not set")
    assert gw.query("SELECT api_key FROM providers WHERE id = 'anthropic'")[0][0] == ""
