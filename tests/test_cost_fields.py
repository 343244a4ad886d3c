"""`usage.cost` on the wire: a JSON number with the exact digits of the charge,
equal to the header and the ledger row; `usage.cost_details` adds up to it and
names the price point billed."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text

MINI = "gpt-4o-mini-2024-07-18"


def chat(gw: GatewayServer, content: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": content}], **extra},
        timeout=60,
    )


def exact(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def test_the_cost_is_a_number_with_the_exact_digits_of_the_header_and_the_ledger_row(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    response = chat(gateway, "how much is this")
    assert response.status_code == 200, response.text
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert f'"cost":{usd_text(cost)},'.encode() in response.content  # nine places, no exponent
    body = exact(response)["usage"]
    assert body["cost"] == Decimal(response.headers["x-gateway-cost-usd"]) == Decimal(cost) / 10**9
    row = gateway.charges()[-1]
    assert row["request_id"] == response.headers["x-request-id"]
    assert -row["amount_nano"] == cost
    details = body["cost_details"]
    assert details["input"] == Decimal(usage["prompt_tokens"]) * Decimal("0.15") / 10**6
    assert details["output"] == Decimal(usage["completion_tokens"]) * Decimal("0.60") / 10**6
    assert details["cached_input"] == details["cache_write"] == 0
    parts = details["input"] + details["output"]
    assert details["markup"] == parts / 10  # the free tier's 10 %
    total = (parts + details["markup"]).quantize(Decimal("1E-9"), rounding=ROUND_HALF_UP)
    assert total == body["cost"]
    assert "uncollected" not in details


def test_a_streamed_answer_ends_with_the_same_cost_fields(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    response = chat(gateway, "stream it", stream=True, stream_options={"include_usage": True})
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
    final = json.loads(events[-1], parse_float=Decimal)
    row = gateway.charges()[-1]
    assert final["usage"]["cost"] == Decimal(-row["amount_nano"]) / 10**9
    assert set(final["usage"]["cost_details"]) == {
        "input", "cached_input", "cache_write", "output", "markup", "price_point",
    }  # fmt: skip


def test_the_price_point_billed_is_the_one_the_admin_api_lists_in_force(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    first = exact(chat(gateway, "before"))["usage"]["cost_details"]["price_point"]
    listed = admin.ok(admin.get(f"/admin/models/{MINI}/prices"))["data"]
    assert [p["id"] for p in listed if p["in_force"]] == [first]
    assert first.startswith(f"{MINI}@")

    changed = admin.post(
        f"/admin/models/{MINI}/prices",
        {"input_price_per_million": "1.50", "output_price_per_million": "6.00", "reason": "x10"},
    )
    assert changed.status_code == 201, changed.text
    after = exact(chat(gateway, "after"))["usage"]
    listed = admin.ok(admin.get(f"/admin/models/{MINI}/prices"))["data"]
    in_force = [p["id"] for p in listed if p["in_force"]]
    assert in_force == [after["cost_details"]["price_point"]] and in_force != [first]
    usage = fake_openai.responses[-1]["usage"]
    assert after["cost"] * 10**9 == expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "1.50", "6.00"
    )
