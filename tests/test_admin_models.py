"""Models and prices through the admin API: validation, bulk import, prices with
effective dates and the requests they bill, history and rollback."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.admin_client import Admin, error_of, fingerprint
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

NEW = {
    "model_id": "house-model",
    "provider": "openai",
    "upstream_model": "gpt-4o-mini-2024-07-18",
    "input_price_per_million": "0.0375",
    "output_price_per_million": "1.25",
    "context_window_size": 8000,
    "max_output_tokens": 1000,
}
MINI = "gpt-4o-mini-2024-07-18"


def chat(gw: GatewayServer, model: str, text: str = "one two three") -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 20},
        timeout=30,
    )


def test_create_list_get_update_deactivate(gateway: GatewayServer, fake_openai: FakeOpenAI):
    admin = Admin(gateway)
    created = admin.ok(admin.post("/admin/models", NEW, reason="house blend"), 201)
    assert created["model"]["id"] == "901"  # the next free numeric id
    assert created["model"]["input_price_per_million"] == "0.0375"
    model = admin.ok(admin.get("/admin/models/house-model"))
    assert model == created["model"]
    listed = admin.ok(admin.get("/admin/models", provider="openai", active="true"))["data"]
    assert "house-model" in [m["model_id"] for m in listed]
    assert all(m["provider"] == "openai" and m["is_active"] for m in listed)

    # Served and billed at once, at its own price.
    response = chat(gateway, "house-model")
    assert response.status_code == 200, response.text
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.0375", "1.25")
    assert gateway.charges()[-1]["amount_nano"] == -cost

    updated = admin.ok(
        admin.patch("/admin/models/house-model", {"note": "tuned", "max_output_tokens": 500})
    )
    assert (updated["model"]["note"], updated["model"]["max_output_tokens"]) == ("tuned", 500)
    assert updated["model"]["input_price_per_million"] == "0.0375"

    gone = admin.ok(admin.delete("/admin/models/house-model"))
    assert gone["model"]["is_active"] is False
    assert chat(gateway, "house-model").status_code == 404
    assert admin.ok(admin.get("/admin/models/house-model"))["is_active"] is False
    inactive = admin.ok(admin.get("/admin/models", active="false"))["data"]
    assert [m["model_id"] for m in inactive] == ["house-model"]
    entries = admin.ok(admin.get("/admin/history", entity="model", entity_id="house-model"))["data"]
    assert [e["action"] for e in entries] == ["update", "update", "create"]
    assert entries[-1]["reason"] == "house blend"


BAD_MODELS: list[tuple[dict[str, Any], str]] = [
    ({**NEW, "colour": "blue"}, "colour"),
    ({**NEW, "input_price_per_million": "-0.01"}, "input_price_per_million"),
    ({**NEW, "input_price_per_million": "cheap"}, "input_price_per_million"),
    ({**NEW, "output_price_per_million": True}, "output_price_per_million"),
    ({**NEW, "context_window_size": "8000"}, "context_window_size"),
    ({**NEW, "context_window_size": 0}, "context_window_size"),
    ({**NEW, "max_output_tokens": 9000}, "max_output_tokens"),
    ({**NEW, "is_active": "yes"}, "is_active"),
    ({**NEW, "mode": "vision"}, "mode"),
    ({**NEW, "tokenizer": "gpt2"}, "tokenizer"),
    ({**NEW, "model_id": "auto"}, "model_id"),
    ({**NEW, "model_id": "has space"}, "model_id"),
    ({**NEW, "model_id": MINI}, "model_id"),  # duplicate
    ({**NEW, "id": "108"}, "id"),  # duplicate row id
    ({**NEW, "provider": "nobody"}, "provider"),
    ({**NEW, "fallbacks": ["no-such-model"]}, "fallbacks"),
    ({k: v for k, v in NEW.items() if k != "output_price_per_million"}, "output_price_per_million"),
]


@pytest.mark.parametrize(("document", "param"), BAD_MODELS)
def test_bad_models_are_refused_and_nothing_is_written(
    gateway: GatewayServer, document: dict[str, Any], param: str
):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    response = admin.post("/admin/models", document)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert fingerprint(gateway) == before


def test_bad_updates_are_refused(gateway: GatewayServer):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    for patch, param in [
        ({"input_price_per_million": "-1"}, "input_price_per_million"),
        ({"model_id": "renamed"}, "model_id"),
        ({"id": "5"}, "id"),
        ({"surprise": 1}, "surprise"),
    ]:
        response = admin.patch(f"/admin/models/{MINI}", patch)
        assert response.status_code == 400, patch
        assert error_of(response)["param"] == param
    assert admin.patch("/admin/models/nope", {"note": "x"}).status_code == 404
    bad_json = httpx.patch(
        f"{gateway.base_url}/admin/models/{MINI}", headers=admin.headers, content=b"{"
    )
    assert bad_json.status_code == 400
    assert fingerprint(gateway) == before


def test_bulk_dry_run_reports_exactly_what_the_real_run_does(gateway: GatewayServer):
    admin = Admin(gateway)
    rows = {
        "models": [
            {"model_id": MINI, "note": "bulk note"},
            {**NEW, "model_id": "bulk-a"},
            {**NEW, "model_id": "bulk-b", "id": "950", "fallbacks": ["bulk-a"]},
            {"model_id": "mock-1"},  # unchanged
        ]
    }
    before = fingerprint(gateway)
    dry = admin.ok(admin.post("/admin/models/bulk", rows, dry_run="true"))
    assert fingerprint(gateway) == before
    real = admin.ok(admin.post("/admin/models/bulk", rows))
    assert real.pop("dry_run") is False and dry.pop("dry_run") is True
    assert len(real.pop("history_ids")) == 3
    assert real == dry
    assert dry["created"] == ["bulk-a", "bulk-b"]
    assert dry["unchanged"] == ["mock-1"]
    assert dry["updated"] == [
        {
            "model_id": MINI,
            "changes": {"note": ["list price", "bulk note"]},
        }
    ]
    assert admin.ok(admin.get("/admin/models/bulk-b"))["id"] == "950"
    assert admin.ok(admin.get("/admin/models/bulk-a"))["id"] == "901"  # the next free id


MALFORMED: list[tuple[Any, str | None]] = [
    ([{"model_id": "x"}], None),  # not a JSON object
    ({"models": []}, "models"),
    ({"models": "all"}, "models"),
    ({"models": [NEW, {**NEW, "model_id": "y", "input_price_per_million": "-1"}]},
     "models[1].input_price_per_million"),
    ({"models": [NEW, NEW]}, "models[1].model_id"),  # the same model twice
    ({"models": [NEW, 7]}, "models[1]"),
    ({"models": [{**NEW, "id": "x1"}, {**NEW, "model_id": "z", "id": "x1"}]}, "models[1].id"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), MALFORMED)
def test_malformed_bulk_files_write_nothing(gateway: GatewayServer, body: Any, param: str | None):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    response = admin.post("/admin/models/bulk", body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param
    if param and param.startswith("models["):
        assert "row 2" in error["message"] and "nothing was written" in error["message"]
    assert fingerprint(gateway) == before


def test_export_imports_back_unchanged(gateway: GatewayServer):
    admin = Admin(gateway)
    exported = admin.ok(admin.get("/admin/models/export"))
    assert len(exported["models"]) == 41
    report = admin.ok(admin.post("/admin/models/bulk", exported, dry_run="true"))
    assert report["created"] == [] and report["updated"] == []
    assert len(report["unchanged"]) == 41


def test_reorder_sets_fallback_priorities(gateway: GatewayServer):
    admin = Admin(gateway)
    body = {"models": ["mock-1", MINI], "providers": ["mock", "openai"]}
    done = admin.ok(admin.post("/admin/models/reorder", body))
    assert len(done["history_ids"]) == 4
    assert admin.ok(admin.get("/admin/models/mock-1"))["fallback_priority"] == 10
    assert admin.ok(admin.get(f"/admin/models/{MINI}"))["fallback_priority"] == 20
    assert admin.ok(admin.get("/admin/providers/openai"))["fallback_priority"] == 20
    before = fingerprint(gateway)
    assert admin.post("/admin/models/reorder", {"models": ["nope"]}).status_code == 400
    assert admin.post("/admin/models/reorder", {"models": ["mock-1", "mock-1"]}).status_code == 400
    assert admin.post("/admin/models/reorder", {"order": []}).status_code == 400
    assert fingerprint(gateway) == before


def mini_cost(usage: dict[str, int], inp: str, out: str) -> int:
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], inp, out)


def test_a_price_change_bills_the_next_request_and_not_one_already_started(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    fake_openai.held = True
    slow: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: slow.update(r=chat(gateway, MINI, "slow one")))
    thread.start()
    for _ in range(3000):  # bounds the wait only: until the request waits on the provider
        if fake_openai.calls:
            break
        time.sleep(0.01)
    assert fake_openai.calls == 1  # admitted, at the old price
    changed = admin.post(
        f"/admin/models/{MINI}/prices",
        {"input_price_per_million": "1.50", "output_price_per_million": "6.00", "reason": "x10"},
    )
    assert changed.status_code == 201, changed.text
    fake_openai.held = False
    thread.join()
    fast = chat(gateway, MINI, "fast one")
    assert slow["r"].status_code == 200 and fast.status_code == 200
    by_request = {row["request_id"]: row for row in gateway.charges()}
    slow_row = by_request[slow["r"].headers["x-request-id"]]
    fast_row = by_request[fast.headers["x-request-id"]]
    usage = {r["content"]: r["usage"] for r in fake_openai.responses}
    slow_usage, fast_usage = usage["Echo: slow one"], usage["Echo: fast one"]
    assert slow_row["amount_nano"] == -mini_cost(slow_usage, "0.15", "0.60")  # the old price
    assert fast_row["amount_nano"] == -mini_cost(fast_usage, "1.50", "6.00")  # the new one

    prices = admin.ok(admin.get(f"/admin/models/{MINI}/prices"))["data"]
    assert [(p["input_price_per_million"], p["in_force"]) for p in prices] == [
        ("0.15", False),
        ("1.50", True),
    ]
    assert prices[1]["reason"] == "x10" and prices[1]["actor"] == "admin"


def test_a_scheduled_price_takes_effect_at_its_time(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    start = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = admin.post(
        f"/admin/models/{MINI}/prices",
        {"input_price_per_million": "3", "effective_from": start.isoformat()},
    )
    assert scheduled.status_code == 201, scheduled.text
    before = chat(gateway, MINI)
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.1)
    after = chat(gateway, MINI)
    rows = {row["request_id"]: row for row in gateway.charges()}
    usage = fake_openai.responses[-1]["usage"]

    def price_when_admitted(response: httpx.Response) -> str:
        """Each request is billed at the price in force when it was admitted (its
        row's time): normally the first before the change, the second after it."""
        admitted = datetime.fromisoformat(rows[response.headers["x-request-id"]]["created_at"])
        return "3" if admitted >= start else "0.15"

    for response in (before, after):
        inp = price_when_admitted(response)
        assert rows[response.headers["x-request-id"]]["amount_nano"] == -mini_cost(
            usage, inp, "0.60"
        )
    assert price_when_admitted(after) == "3"
    # Once due, the price is written into the model's row, once, by "schedule".
    deadline = time.monotonic() + 60  # bounds the wait only
    while not gateway.query("SELECT 1 FROM model_prices WHERE applied = 1 AND model_id = ?", MINI):
        assert time.monotonic() < deadline, "the scheduled price was not written into the model"
        time.sleep(0.05)
    row = gateway.query("SELECT input_price_per_million FROM model_configurations "
                        "WHERE model_id = ?", MINI)  # fmt: skip
    assert row == [("3",)]
    entries = admin.ok(admin.get("/admin/history", entity="model", entity_id=MINI))["data"]
    assert [(e["actor"], e["new"]["input_price_per_million"]) for e in entries] == [
        ("schedule", "3")
    ]
    # A price from the past would rewrite history: refused.
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    refused = admin.post(
        f"/admin/models/{MINI}/prices", {"input_price_per_million": "1", "effective_from": past}
    )
    assert refused.status_code == 400
    assert error_of(refused)["param"] == "effective_from"
    for bad in (
        {},
        {"input_price_per_million": "-1"},
        {"effective_from": "soon", "input_price_per_million": "1"},
    ):
        assert admin.post(f"/admin/models/{MINI}/prices", bad).status_code == 400


def test_rollback_restores_the_exact_prior_model_and_its_price(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    original = admin.ok(admin.get(f"/admin/models/{MINI}"))
    change = admin.ok(
        admin.patch(f"/admin/models/{MINI}", {"input_price_per_million": "9", "note": "pricey"})
    )
    rolled = admin.ok(admin.post(f"/admin/history/{change['history_id']}/rollback"))
    assert rolled["change"]["reason"] == f"rollback of change {change['history_id']}"
    assert rolled["change"]["new"] == original
    assert admin.ok(admin.get(f"/admin/models/{MINI}")) == original
    entries = admin.ok(admin.get("/admin/history", entity="model", entity_id=MINI))["data"]
    assert [e["id"] for e in entries] == [rolled["change"]["id"], change["history_id"]]
    assert chat(gateway, MINI).status_code == 200
    usage = fake_openai.responses[-1]["usage"]
    assert gateway.charges()[-1]["amount_nano"] == -mini_cost(usage, "0.15", "0.60")
    prices = admin.ok(admin.get(f"/admin/models/{MINI}/prices"))["data"]
    assert [p["input_price_per_million"] for p in prices] == ["0.15", "9", "0.15"]
