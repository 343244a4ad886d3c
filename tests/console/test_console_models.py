"""The models page: a price changed there bills the very next request; search and
filters narrow the table; an import shows its dry-run diff and writes nothing
until applied; a change is rolled back from the model's history."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer, expected_cost_nano

MOCK = "mock-1"


def admin_get(gw: GatewayServer, path: str, **params: str) -> Any:
    answer = httpx.get(
        f"{gw.base_url}{path}", params=params, headers={"authorization": f"Bearer {gw.admin_key}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_price_changed_on_the_page_bills_the_very_next_request(
    module_gateway: GatewayServer, page: Page
):
    gw = module_gateway
    sign_in(page, gw)
    page.goto(f"{gw.base_url}/console/#models/{MOCK}")
    page.get_by_label("Input price per million", exact=True).fill("7.5")
    page.get_by_label("Output price per million", exact=True).fill("12.25")
    page.get_by_label("Reason for the price").fill("console price test")
    page.get_by_role("button", name="Add price").click()
    expect(page.locator(".toast").last).to_have_text(f"{MOCK} is billed at its new price from now.")
    screenshot(page, "models-prices")

    answer = httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {gw.demo_key}"},
        json={"model": MOCK, "messages": [{"role": "user", "content": "price check"}]},
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "7.5", "12.25")
    assert Decimal(answer.headers["x-gateway-cost-usd"]) * 10**9 == cost
    [row] = gw.query(
        "SELECT amount_nano FROM ledger WHERE request_id = ?", answer.headers["x-request-id"]
    )
    assert row[0] == -cost
    points = admin_get(gw, f"/admin/models/{MOCK}/prices")["data"]
    assert (points[-1]["input_price_per_million"], points[-1]["reason"]) == (
        "7.5",
        "console price test",
    )
    expect(page.locator("tr", has_text="in force")).to_contain_text("$7.50")


def test_search_and_filters_narrow_the_table(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    open_page(sign_in(page, gw), "models")
    everything = len(admin_get(gw, "/admin/models")["data"])
    expect(page.locator("#model-count")).to_have_text(f"{everything} of {everything}")
    screenshot(page, "models")
    page.get_by_label("Search models").fill("gpt-4.1")
    expected = [m for m in admin_get(gw, "/admin/models")["data"] if "gpt-4.1" in m["model_id"]]
    expect(page.locator("#model-count")).to_have_text(f"{len(expected)} of {everything}")
    page.get_by_label("Search models").fill("")
    page.get_by_label("Filter by provider").select_option("mock")
    mocks = admin_get(gw, "/admin/models", provider="mock")["data"]
    expect(page.locator("tbody tr[data-model]")).to_have_count(len(mocks))
    page.get_by_label("Filter by capability").select_option("tools")
    profiles = {p["model_id"]: p for p in admin_get(gw, "/admin/router/profiles")["data"]}
    tooled = [m for m in mocks if m["model_id"] in profiles]
    tooled = [m for m in tooled if profiles[m["model_id"]]["capabilities"]["tools"]]
    assert 0 < len(tooled) < len(mocks)
    expect(page.locator("tbody tr[data-model]")).to_have_count(len(tooled))


def test_an_import_shows_its_diff_first_and_a_change_rolls_back(
    module_gateway: GatewayServer, page: Page
):
    gw = module_gateway
    open_page(sign_in(page, gw), "models")
    exported = admin_get(gw, "/admin/models/export")["models"]
    [mini] = [m for m in exported if m["model_id"] == "mock-instruct-1"]
    window = mini["context_window_size"] + 1000
    changed = {**mini, "note": "imported from the console", "context_window_size": window}
    before = admin_get(gw, "/admin/models/mock-instruct-1")

    page.get_by_role("button", name="Import…").click()
    page.get_by_label("Models (JSON)").fill(json.dumps({"models": [changed]}))
    page.get_by_role("button", name="Preview changes").click()
    update = page.locator("[data-import-update='mock-instruct-1']")
    expect(update).to_contain_text('+ note: "imported from the console"')
    expect(update).to_contain_text(f"+ context_window_size: {window}")
    screenshot(page, "models-import-diff")
    assert admin_get(gw, "/admin/models/mock-instruct-1") == before  # a dry run wrote nothing
    page.get_by_role("dialog").get_by_role("button", name="Apply").click()
    expect(page.locator(".toast").last).to_have_text("Imported: 0 created, 1 updated, 0 unchanged.")
    after = admin_get(gw, "/admin/models/mock-instruct-1")
    assert (after["note"], after["context_window_size"]) == ("imported from the console", window)

    page.goto(f"{gw.base_url}/console/#models/mock-instruct-1")
    [imported, *_] = admin_get(gw, "/admin/history", entity="model", entity_id="mock-instruct-1")[
        "data"
    ]
    page.get_by_role("button", name=f"Roll back change {imported['id']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    expect(page.locator(".toast").last).to_have_text(f"Change {imported['id']} rolled back.")
    assert admin_get(gw, "/admin/models/mock-instruct-1") == before
