"""The usage page: spend per model equals the ledger's, to the nano-USD; the ledger
pages forward and back; the CSV export downloaded from the page is the ledger."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from gateway.api.admin.ledger_export import COLUMNS
from tests.console.conftest import open_page, screenshot, sign_in
from tests.harness import GatewayServer


def shown_usd(nano: int) -> str:
    """How the console writes an amount: $, thousands separated, 2 to 9 decimals."""
    whole, frac = f"{Decimal(nano) / Decimal(10**9):.9f}".split(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${int(whole):,}.{frac}"


def ask(gw: GatewayServer, model: str, text: str) -> None:
    answer = httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {gw.demo_key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}]},
    )
    assert answer.status_code == 200, answer.text


def test_spend_the_ledger_pages_and_the_csv_export(module_gateway: GatewayServer, page: Page):
    gw = module_gateway
    for n in range(9):
        ask(gw, "mock-1", f"question {n}")
    for n in range(3):
        ask(gw, "gpt-4o-mini-2024-07-18", f"other question {n}")
    open_page(sign_in(page, gw), "usage")
    for model in ("mock-1", "gpt-4o-mini-2024-07-18"):
        [(spent,)] = gw.query(
            "SELECT -SUM(amount_nano) FROM ledger WHERE kind = 'charge' AND model_id = ?", model
        )
        expect(page.locator(f"[data-spend='{model}']")).to_have_text(shown_usd(spent))
    [(total,)] = gw.query("SELECT -SUM(amount_nano) FROM ledger WHERE kind = 'charge'")
    expect(page.locator("[data-usage-total=spend]")).to_have_text(shown_usd(total))
    expect(page.locator("[data-usage-total=requests]")).to_have_text("12")
    screenshot(page, "usage")

    ledger = [r[0] for r in gw.query("SELECT request_id FROM ledger ORDER BY rowid")]
    assert len(ledger) == 13  # the seed's opening top-up and twelve charges
    page.get_by_label("Rows per page").select_option("10")
    rows = page.locator("[data-ledger-row]")
    expect(rows).to_have_count(10)
    first = rows.evaluate_all("rows => rows.map(r => r.dataset.ledgerRow)")
    assert first == ledger[:10]
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#ledger-page")).to_have_text("Page 2")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.ledgerRow)") == ledger[10:]
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    screenshot(page, "usage-ledger")
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#ledger-page")).to_have_text("Page 1")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.ledgerRow)") == first

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.startswith("ledger-")
    text = Path(download.value.path()).read_text()
    exported = list(csv.DictReader(io.StringIO(text)))
    expected = gw.query("SELECT request_id, amount_nano, kind FROM ledger ORDER BY rowid")
    assert [(r["request_id"], int(r["amount_nano"]), r["kind"]) for r in exported] == expected
    assert all(Decimal(r["amount_usd"]) * 10**9 == int(r["amount_nano"]) for r in exported)


def test_the_export_answers_scripts_and_defuses_formulas(module_gateway: GatewayServer):
    gw = module_gateway
    bearer = {"authorization": f"Bearer {gw.admin_key}"}
    credit = {"amount_usd": "1", "reason": '=HYPERLINK("http://x")', "idempotency_key": "csv-1"}
    made = httpx.post(f"{gw.base_url}/admin/users/demo/topup", headers=bearer, json=credit)
    assert made.status_code == 201
    answer = httpx.get(
        f"{gw.base_url}/admin/ledger/export", params={"kind": "topup"}, headers=bearer
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="ledger-')
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["kind"] for r in rows] == ["topup", "topup"]
    assert rows[-1]["reason"] == '\'=HYPERLINK("http://x")'
    assert (rows[-1]["amount_nano"], rows[-1]["amount_usd"]) == ("1000000000", "1.000000000")
    assert httpx.get(f"{gw.base_url}/admin/ledger/export").status_code == 401
    bad = httpx.get(f"{gw.base_url}/admin/ledger/export", params={"kind": "x"}, headers=bearer)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "kind"
    future = httpx.get(
        f"{gw.base_url}/admin/ledger/export", params={"from": "2999-01-01"}, headers=bearer
    )
    assert future.text.strip().split("\r\n") == [",".join(_header())]


def _header() -> list[str]:
    return list(COLUMNS)
