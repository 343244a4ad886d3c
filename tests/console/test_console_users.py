"""The users page: a top-up sent twice with one idempotency key is one ledger row;
a key made on the page works and is shown once; a key revoked there stops."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer


def chat(gw: GatewayServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
    )


def test_a_top_up_sent_twice_with_one_idempotency_key_is_one_ledger_row(
    module_gateway: GatewayServer, page: Page
):
    gw = module_gateway
    open_page(sign_in(page, gw), "users")
    page.locator("[data-user=demo] a").click()
    before = gw.balance("demo")
    page.get_by_label("Amount (USD)").fill("5.25")
    page.get_by_label("Reason", exact=True).fill("invoice 7")
    key = page.get_by_label("Idempotency key").input_value()
    assert key.startswith("console-")
    apply = page.get_by_role("button", name="Apply")
    result = page.locator("[data-credit-result]")
    apply.click()
    expect(result).to_contain_text("applied")
    expect(result).to_contain_text("$5.25 recorded")
    apply.click()  # the same form again: a retry
    expect(result).to_contain_text("replayed")
    screenshot(page, "users-topup")
    tier = page.locator("tr", has=page.get_by_label("Markup percent of free"))
    expect(tier.locator("td").nth(3)).to_have_text("1")  # demo is on the free tier
    rows = gw.query(
        "SELECT amount_nano, reason FROM ledger WHERE user_id = 'demo' AND request_id = ?",
        f"topup:demo:{key}",
    )
    assert rows == [(5_250_000_000, "invoice 7")]
    assert gw.balance("demo") == before + 5_250_000_000
    expect(page.locator("[data-balance=demo]")).to_have_text(
        "$"
        + f"{(before + 5_250_000_000) // 10**9:,}.{(before + 5_250_000_000) % 10**9:09d}".rstrip(
            "0"
        )
    )

    # A new idempotency key is a new top-up.
    page.get_by_role("button", name="New idempotency key").click()
    assert page.get_by_label("Idempotency key").input_value() != key
    apply.click()
    expect(result).to_contain_text("applied")
    assert gw.balance("demo") == before + 2 * 5_250_000_000


def test_a_key_is_made_shown_once_and_revoked(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    open_page(sign_in(page, gw), "users")
    page.locator("[data-user=demo] a").click()
    page.get_by_label("Key name").fill("console laptop")
    page.get_by_label("RPM").fill("7")
    page.get_by_role("button", name="Create key").click()
    made = page.locator("[data-new-key]").inner_text().strip()
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    assert chat(gw, made).status_code == 200
    assert made not in page.content()
    row = page.locator("tr", has_text="console laptop")
    expect(row).to_contain_text("7 rpm")
    screenshot(page, "users")
    prefix = row.locator(".mono").inner_text().rstrip("…")
    page.get_by_role("button", name=f"Revoke key {prefix}").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="console laptop")).to_contain_text("revoked")
    assert chat(gw, made).status_code == 401
