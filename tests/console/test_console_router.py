"""The router page: a slider moves the simulation before anything is saved; saving
records the change with its reason; the history rolls it back; a profile's score
is edited in place."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer

CODING = "Write a Python function that merges two sorted lists and explain its complexity."
MINI, O3 = "gpt-4.1-mini-2025-04-14", "o3-2025-04-16"
KNOB = "preset_cost_weights.balanced"  # 1 by default; at 0 cost stops counting and o3 wins


def api(gw: GatewayServer, path: str, **params: str) -> Any:
    answer = httpx.get(
        f"{gw.base_url}{path}", params=params, headers={"authorization": f"Bearer {gw.admin_key}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored_weight(gw: GatewayServer) -> Any:
    return api(gw, "/admin/router/config")["config"]["preset_cost_weights"]["balanced"]


def test_a_slider_moves_the_simulation_then_save_and_roll_back(
    module_gateway: GatewayServer, page: Page
):
    gw = module_gateway
    changes = api(gw, "/admin/history", entity="router_config")["data"]
    open_page(sign_in(page, gw), "router")
    page.get_by_label("Prompt, or a chat request as JSON").fill(CODING)
    winner = page.locator("#simulation tbody tr").first
    expect(winner).to_have_attribute("data-candidate", MINI)
    expect(page.locator("[data-sim=category]")).to_have_text("coding")
    screenshot(page, "router")

    page.locator(f"[data-knob-slider='{KNOB}']").press("Home")  # the keyboard moves it to 0
    expect(page.locator(f"[data-knob='{KNOB}']")).to_have_value("0")
    expect(winner).to_have_attribute("data-candidate", O3)
    expect(page.locator("#draft-note")).to_have_text("1 unsaved change")
    screenshot(page, "router-simulate-changed")
    screenshot(page, "router-simulate-changed-viewport", full_page=False)
    # Nothing was stored by moving it.
    assert stored_weight(gw) == 1
    assert api(gw, "/admin/history", entity="router_config")["data"] == changes

    page.get_by_label("Reason for the change").fill("quality first for coding")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#draft-note")).to_have_text("No unsaved change.")
    assert stored_weight(gw) == 0
    [saved, *_] = api(gw, "/admin/history", entity="router_config")["data"]
    assert (saved["actor"], saved["reason"], saved["action"]) == (
        "admin",
        "quality first for coding",
        "update",
    )
    assert saved["old"]["preset_cost_weights"]["balanced"] == 1
    assert saved["new"]["preset_cost_weights"]["balanced"] == 0
    expect(winner).to_have_attribute("data-candidate", O3)  # now the stored config decides

    page.get_by_role("button", name=f"Diff of change {saved['id']}").click()
    expect(page.locator(".diff-row")).to_contain_text("preset_cost_weights.balanced: 0")
    screenshot(page, "router-history")
    page.get_by_role("button", name=f"Roll back change {saved['id']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    expect(page.locator(f"[data-knob='{KNOB}']")).to_have_value("1")
    assert stored_weight(gw) == 1
    [undone, *_] = api(gw, "/admin/history", entity="router_config")["data"]
    assert undone["reason"].startswith(f"rollback of change {saved['id']}")
    expect(winner).to_have_attribute("data-candidate", MINI)


def test_a_profile_score_is_edited_in_place(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    open_page(sign_in(page, gw), "router")
    cell = page.get_by_label(f"{O3} creative score")
    before = api(gw, f"/admin/router/profiles/{O3}")["scores"]
    cell.fill("12")
    cell.press("Tab")
    expect(page.locator(".toast").last).to_have_text(f"{O3}: creative is now 12.")
    after = api(gw, f"/admin/router/profiles/{O3}")["scores"]
    assert after == {**before, "creative": 12}
    cell.fill("101")  # out of range: refused, the cell shows the stored score again
    cell.press("Tab")
    expect(cell).to_have_value("12")
    expect(cell).to_have_attribute("aria-invalid", "true")
    [change, *_] = api(gw, "/admin/history", entity="model_profile", entity_id=O3)["data"]
    assert change["new"]["scores"]["creative"] == 12
