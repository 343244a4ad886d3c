"""The budgets page: a team made there with its wallet topped up pays for its
member; a budget made there refuses the request that would pass it, and the
page shows what the budget's window has spent and left."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer


def chat(gw: GatewayServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    )


def test_a_team_and_a_budget_made_on_the_page_are_enforced(
    module_gateway: GatewayServer, page: Page
):
    gw = module_gateway
    key = gw.add_user("wren", 0)
    open_page(sign_in(page, gw), "budgets")
    page.get_by_label("Team id").fill("studio")
    page.get_by_label("Members (user ids, comma-separated)").fill("wren")
    page.get_by_label("The team's wallet pays for its members").check()
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("[data-wallet=studio]")).to_have_text("$0.00")
    page.get_by_role("button", name="Top up team studio").click()
    page.get_by_label("Amount (USD)", exact=True).last.fill("2")
    page.get_by_role("button", name="Top up", exact=True).click()
    expect(page.locator("[data-wallet=studio]")).to_have_text("$2.00")

    served = chat(gw, key)
    assert served.status_code == 200, served.text
    [(paid_by, team)] = gw.query(
        "SELECT paid_by, team_id FROM ledger WHERE user_id = 'wren' AND kind = 'charge'"
    )
    assert (paid_by, team) == ("team", "studio")

    page.get_by_label("Budget scope").select_option("team")
    page.get_by_label("Subject", exact=True).fill("studio")
    page.get_by_label("Budget window").select_option("daily")
    page.get_by_label("Limit (USD)").fill("0.000000001")
    page.get_by_label("Alert at percents").fill("50, 100")
    page.get_by_role("button", name="Create budget").click()
    row = page.locator("tr", has=page.locator("[data-budget=team-studio-daily]"))
    expect(row).to_contain_text("daily")
    expect(row).to_contain_text("50 %, 100 %")
    screenshot(page, "budgets-team-and-budget")

    refused = chat(gw, key)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert refused.json()["error"]["budget"]["id"] == "team-studio-daily"
