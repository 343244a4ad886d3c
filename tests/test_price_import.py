# ruff: noqa: E501
"""Price files of every format, normalised exactly and matched to our models."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from config_store.catalogue import DEMO_MODELS, DEMO_PROVIDERS
from config_store.price_import import PriceFileError, detect, match, parse
from gateway.ops.price_update import plan
from tests.admin_client import Admin, error_of, fingerprint
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

MODELS = {m.model_id: m for m in DEMO_MODELS}
PROVIDERS = {p.id: p for p in DEMO_PROVIDERS}
MINI = "gpt-4o-mini-2024-07-18"

LITELLM = {
    "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "documentation"},
    "gpt-4o-mini-2024-07-18": {
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": "6e-7",
        "cache_read_input_token_cost": 7.5e-08,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "litellm_provider": "openai",
        "mode": "chat",
    },
    "gemini/gemini-2.5-pro": {
        "input_cost_per_token": "1.25e-6",
        "output_cost_per_token": "0.000015",
        "litellm_provider": "gemini",
        "mode": "chat",
    },
    "gemini-1.5-flash-8b": {
        "input_cost_per_token": "3.75e-8",
        "output_cost_per_token": "1.5e-7",
        "litellm_provider": "gemini",
    },
    "dall-e-3": {"input_cost_per_token": 0, "output_cost_per_token": 0, "mode": "image_generation"},
    "mistral/mistral-large": {"input_cost_per_token": 2e-6, "output_cost_per_token": 6e-6},
}
OPENROUTER = {
    "data": [
        {"id": "openai/gpt-4o-mini-2024-07-18", "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
        {"id": "anthropic/claude-3-5-haiku-20241022", "pricing": {"prompt": "0.0000008", "completion": "0.000004", "input_cache_read": "0.00000008", "input_cache_write": "0.000001"}},
        {"id": "anthropic/gpt-4o-2024-08-06", "pricing": {"prompt": "0.0000025", "completion": "0.00001"}},
        {"id": "meta-llama/llama-3-70b", "pricing": {"prompt": "0.0000008", "completion": "0.0000008"}},
    ]
}  # fmt: skip


def prices(report: dict[str, Any], model: str) -> dict[str, Any]:
    for entry in report["inserted"] + report["changed"]:
        if entry["model_id"] == model:
            return dict(entry["new"])
    raise AssertionError(f"{model} not priced")


def test_litellm_per_token_values_become_exact_per_million():
    report, updates = plan(LITELLM, MODELS, PROVIDERS)
    assert report.format == "litellm" and report.rows_read == 5
    rows, bad = parse(LITELLM, "litellm")
    assert bad == []
    mini = next(r for r in rows if r.name == MINI)
    assert (mini.input, mini.output, mini.cached_input) == (
        Decimal("0.15"),
        Decimal("0.6"),
        Decimal("0.075"),
    )
    assert MINI not in updates  # the same prices: nothing to write
    gem = updates["gemini-2.5-pro"]
    assert (gem["input_price_per_million"], gem["output_price_per_million"]) == (
        Decimal("1.25"),
        Decimal("15"),
    )
    flash = updates.get("gemini-1.5-flash-8b") or {}
    assert flash == {}  # 3.75e-8 x 1e6 = 0.0375: its price already, unchanged
    json = report.to_json()
    assert "gemini-1.5-flash-8b" in json["unchanged"]
    assert MINI in json["unchanged"]  # 0.15 / 0.60 / 0.075: the same
    skipped = {s["name"]: s["reason"] for s in json["skipped"]}
    assert skipped == {"dall-e-3": "zero price", "mistral/mistral-large": "not in catalogue"}
    assert json["matched"] == 3


def test_per_million_per_thousand_and_gateway_groups():
    per_1m = {"gemini-1.5-flash-8b": {"input": "0.0375", "output": 0.15}}
    report, updates = plan(per_1m, MODELS, PROVIDERS, fmt="per_1m")
    assert report.unchanged == ["gemini-1.5-flash-8b"] and updates == {}
    per_1k = {"gpt-4o-2024-11-20": {"input": "0.00125", "output": "0.005"}}
    _, updates = plan(per_1k, MODELS, PROVIDERS, fmt="per_1k")
    assert updates["gpt-4o-2024-11-20"]["input_price_per_million"] == Decimal("1.25")
    assert updates["gpt-4o-2024-11-20"]["output_price_per_million"] == Decimal("5")
    grouped = {"nosana": {"meta-llama/Llama-3.3-70B-Instruct": {"input": "0.90", "output": "0.90"}}}
    nosana = replace(
        MODELS["mock-1"], model_id="nosana/meta-llama/Llama-3.3-70B-Instruct", id="999"
    )
    _, updates = plan(grouped, {**MODELS, nosana.model_id: nosana}, PROVIDERS, fmt="per_1m")
    assert updates[nosana.model_id]["input_price_per_million"] == Decimal("0.9")


def test_openrouter_and_matching_rules():
    rows, bad = parse(OPENROUTER, "openrouter")
    assert bad == []
    haiku_row = rows[1]
    assert (haiku_row.input, haiku_row.output, haiku_row.cached_input, haiku_row.cache_write) == (
        Decimal("0.8"),
        Decimal("4"),
        Decimal("0.08"),
        Decimal("1"),
    )
    report, updates = plan(OPENROUTER, MODELS, PROVIDERS)
    assert report.format == "openrouter"
    haiku = updates.get("claude-3-5-haiku-20241022")
    assert haiku is None  # the same as its list price
    json = report.to_json()
    skipped = {s["name"]: s["reason"] for s in json["skipped"]}
    # The prefix must name the model's provider: anthropic does not serve gpt-4o.
    assert skipped["anthropic/gpt-4o-2024-08-06"] == "not in catalogue"
    assert skipped["meta-llama/llama-3-70b"] == "not in catalogue"
    assert json["matched"] == 2
    # By upstream name: gemini-1.5-pro-1m is sent upstream as gemini-1.5-pro.
    [row], _ = parse({"gemini-1.5-pro": {"input": "2", "output": "6"}}, "per_1m")
    matched = {m.model_id for m in match(row, MODELS.values(), PROVIDERS)}
    assert matched == {"gemini-1.5-pro"}  # the exact id wins
    [row], _ = parse({"google/gemini-1.5-pro-1m": {"input": "2", "output": "6"}}, "per_1m")
    assert [m.model_id for m in match(row, MODELS.values(), PROVIDERS)] == ["gemini-1.5-pro-1m"]


def test_export_round_trip_and_detection():
    export = {
        "models": [
            {
                "model_id": MINI,
                "input_price_per_million": "0.30",
                "output_price_per_million": "1.20",
            }
        ]
    }
    assert detect(export) == "export"
    assert detect(OPENROUTER) == "openrouter" and detect(LITELLM) == "litellm"
    report, updates = plan(export, MODELS, PROVIDERS)
    assert report.changed[0]["old"]["input_price_per_million"] == "0.15"
    assert updates[MINI]["input_price_per_million"] == Decimal("0.30")
    assert updates[MINI]["cached_input_price_per_million"] == Decimal("0.075")  # kept


@pytest.mark.parametrize(
    ("document", "fmt", "rows"),
    [
        (
            {"a": {"input": "cheap", "output": "1"}, "b": {"input": "1", "output": "1"}},
            "per_1m",
            [1],
        ),
        ({"x": {"input_cost_per_token": -1}}, "litellm", [1]),
        (
            {"data": [{"id": "a", "pricing": {"prompt": "1e-6"}}, {"id": "b"}, 5]},
            "openrouter",
            [2, 3],
        ),
        ({"models": [{"model_id": "m", "input_price_per_million": "NaN"}]}, "export", [1]),
        ({"a": {"output": "Infinity"}}, "per_1k", [1]),
        ({"a": "free"}, "per_1m", [1]),
    ],
)
def test_malformed_files_are_rejected_with_row_numbers(document: Any, fmt: str, rows: list[int]):
    with pytest.raises(PriceFileError) as raised:
        plan(document, MODELS, PROVIDERS, fmt=fmt)
    assert [n for n, _ in raised.value.rows] == rows
    assert f"row {rows[0]}" in str(raised.value)
    report, _ = plan(document, MODELS, PROVIDERS, fmt=fmt, skip_malformed=True)
    assert [s["row"] for s in report.skipped if "not in catalogue" not in s["reason"]] == rows
    with pytest.raises(PriceFileError):
        plan([1, 2], MODELS, PROVIDERS)


def test_import_through_the_api_dry_run_equals_the_real_run_and_bills_at_once(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    document = {
        "gpt-4o-mini-2024-07-18": {"input": "0.0375", "output": "1.25"},
        "unknown-x": {"input": "1", "output": "1"},
    }
    before = fingerprint(gateway)
    dry = admin.ok(
        admin.call("POST", "/admin/prices/import", document, dry_run="true", format="per_1m")
    )
    assert fingerprint(gateway) == before
    real = admin.ok(admin.call("POST", "/admin/prices/import", document, format="per_1m"))
    assert dry.pop("dry_run") is True and real.pop("dry_run") is False
    assert dry == real
    assert real["changed"] == [
        {
            "model_id": MINI,
            "row": 1,
            "name": MINI,
            "old": {
                "input_price_per_million": "0.15",
                "output_price_per_million": "0.60",
                "cached_input_price_per_million": "0.075",
                "cache_write_price_per_million": None,
            },
            "new": {
                "input_price_per_million": "0.0375",
                "output_price_per_million": "1.25",
                "cached_input_price_per_million": "0.075",
                "cache_write_price_per_million": None,
            },
        }
    ]
    assert real["coverage"] == {
        "active_models": 41,
        "priced": 41,
        "percent": "100.0",
        "unpriced": [],
    }
    response = httpx_post(gateway)
    assert response == 200
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.0375", "1.25")
    assert gateway.charges()[-1]["amount_nano"] == -cost
    history = admin.ok(admin.get(f"/admin/models/{MINI}/prices"))["data"]
    assert [p["input_price_per_million"] for p in history] == ["0.15", "0.0375"]

    refused = admin.call("POST", "/admin/prices/import", {"a": {"input": "x"}}, format="per_1m")
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "malformed_price_file"
    assert "row 1" in error_of(refused)["message"]


def httpx_post(gw: GatewayServer) -> int:
    import httpx

    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": "one two"}]},
    ).status_code
