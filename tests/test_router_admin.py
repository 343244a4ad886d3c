"""Router config and profiles through the admin API: every knob's effect on
the simulate output, validation, authorization, history and rollback."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer

CODING = "Write a Python function that sorts a list."  # coding, simple
REASONING = "Solve for x: 3x + 7 = 2x - 5"  # reasoning, simple
RESEARCH = "Find recent studies on sleep and memory and cite your sources."  # research, simple
COMPLEX = "Explain step by step and in detail how to design a rate limiter."  # reasoning, complex
MINI41, O3, O3MINI, GPT41 = (
    "gpt-4.1-mini-2025-04-14",
    "o3-2025-04-16",
    "o3-mini-2025-01-31",
    "gpt-4.1-2025-04-14",
)


def admin(gw: GatewayServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.admin_key}"}


def simulate(gw: GatewayServer, text: str, model: str = "auto", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    response = httpx.post(f"{gw.base_url}/admin/router/simulate", headers=admin(gw), json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def candidate(result: dict[str, Any], model: str) -> dict[str, Any]:
    [found] = [c for c in result["candidates"] if c["model"] == model]
    return found


def put_config(gw: GatewayServer, patch: Any, reason: str = "") -> httpx.Response:
    return httpx.put(
        f"{gw.base_url}/admin/router/config",
        headers=admin(gw),
        params={"reason": reason} if reason else None,
        json=patch,
    )


def history(gw: GatewayServer, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{gw.base_url}/admin/history", headers=admin(gw), params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def d(value: Any) -> Decimal:
    return Decimal(str(value))


def test_simulate_shows_every_term_and_calls_no_provider(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    result = simulate(gateway, CODING)
    assert (result["category"], result["complexity"], result["preset"]) == (
        "coding",
        "simple",
        "balanced",
    )
    assert result["classified_by"] == "local"
    assert "code_words" in result["signals"]
    mini = candidate(result, MINI41)  # coding 82, blended (3 x 0.40 + 1.60) / 4 = 0.70
    assert mini == {
        "model": MINI41,
        "provider": "openai",
        "category_score": 82,
        "complexity_multiplier": 0.7,
        "base": 57.4,
        "stickiness_bonus": 0,
        "reasoning_bonus": 0,
        "research_bonus": 0,
        "blended_price_per_million": "0.700000",
        "cost_tier": "cheap",
        "cost_penalty": 0,
        "speed_tier": "fast",
        "total": 57.4,
    }
    o3 = candidate(result, O3)  # coding 93, blended (3 x 2 + 8) / 4 = 3.5: mid
    assert (o3["base"], o3["cost_tier"], o3["cost_penalty"], o3["total"]) == (65.1, "mid", 10, 55.1)
    for c in result["candidates"]:
        terms = d(c["base"]) + d(c["stickiness_bonus"]) + d(c["reasoning_bonus"])
        assert d(c["total"]) == terms + d(c["research_bonus"]) - d(c["cost_penalty"])
        assert d(c["base"]) == c["category_score"] * d(c["complexity_multiplier"])
    totals = [d(c["total"]) for c in result["candidates"]]
    assert totals == sorted(totals, reverse=True)
    assert result["chain"] == [c["model"] for c in result["candidates"][:3]]
    # Models of providers without credentials are listed with the reason.
    excluded = {e["model"]: e["reason"] for e in result["excluded"]}
    assert "ANTHROPIC_API_KEY" in excluded["claude-3-5-sonnet-20241022"]
    assert fake_openai.calls == 0


KNOBS: list[tuple[str, Any, str, str, dict[str, Any]]] = [
    # (prompt, patch, model, then the fields of its candidate that change)
    (CODING, {"complexity_multipliers": {"simple": 0.5}}, MINI41, "",
     {"complexity_multiplier": 0.5, "base": 41, "total": 41}),
    (CODING, {"cost_penalties": {"mid": 20}}, O3, "",
     {"cost_penalty": 20, "total": 45.1}),
    (CODING, {"preset_cost_weights": {"balanced": 0.5}}, O3, "",
     {"cost_penalty": 5, "total": 60.1}),
    (CODING, {"cost_tiers": {"cheap_below": 0.5}}, MINI41, "",
     {"cost_tier": "mid", "cost_penalty": 10, "total": 47.4}),
    (CODING, {"cost_tiers": {"blend_input_weight": 1}}, MINI41, "",
     {"blended_price_per_million": "1.000000", "cost_tier": "mid", "cost_penalty": 10,
      "total": 47.4}),
    # reasoning 90 x 0.7 + 40 - 10 (mid: blended 1.925)
    (REASONING, {"bonuses": {"reasoning": 40}}, O3MINI, "",
     {"reasoning_bonus": 40, "total": 93}),
    # research 80 x 0.7 + 5 - 10
    (RESEARCH, {"bonuses": {"research": 5}}, GPT41, "",
     {"research_bonus": 5, "total": 51}),
    # COMPLEX is a reasoning task: gpt-4.1 (quality 88) scores 82 x 1, minus 10
    (COMPLEX, {"complex_min_quality": 90}, GPT41, "",
     {"complexity_multiplier": 1, "base": 82, "total": 72}),
    # o3 (quality 93): 97 x 1.5 + 15 (a reasoning model) - 10
    (COMPLEX, {"complexity_multipliers": {"complex": 1.5}}, O3, "",
     {"complexity_multiplier": 1.5, "base": 145.5, "total": 150.5}),
    (CODING, {"preset_cost_weights": {"cheap": 3}}, O3, "auto:cheap",
     {"cost_penalty": 30, "total": 35.1}),
]  # fmt: skip


@pytest.mark.parametrize(("prompt", "patch", "model", "preset", "changes"), KNOBS)
def test_one_knob_changes_the_simulation_exactly(
    gateway: GatewayServer,
    prompt: str,
    patch: dict[str, Any],
    model: str,
    preset: str,
    changes: dict[str, Any],
):
    before = simulate(gateway, prompt, preset or "auto")
    response = put_config(gateway, patch, reason="tuning")
    assert response.status_code == 200, response.text
    after = simulate(gateway, prompt, preset or "auto")
    assert candidate(after, model) == {**candidate(before, model), **changes}
    assert (after["category"], after["complexity"]) == (before["category"], before["complexity"])


def test_reasoning_research_and_complexity_terms(gateway: GatewayServer):
    reasoning = simulate(gateway, REASONING)
    assert reasoning["category"] == "reasoning"
    assert candidate(reasoning, O3MINI)["reasoning_bonus"] == 15  # a reasoning model
    assert candidate(reasoning, GPT41)["reasoning_bonus"] == 0
    research = simulate(gateway, RESEARCH)
    assert (research["category"], research["complexity"]) == ("research", "simple")
    assert candidate(research, GPT41)["research_bonus"] == 25  # research-capable
    assert candidate(research, "gpt-4o-2024-11-20")["research_bonus"] == 0
    complex_ = simulate(gateway, COMPLEX)
    assert complex_["complexity"] == "complex"
    assert candidate(complex_, GPT41)["complexity_multiplier"] == 1.2  # quality 88 >= 85
    assert candidate(complex_, "gpt-4o-mini-2024-07-18")["complexity_multiplier"] == 1  # 72


def test_presets_weigh_the_cost_penalty(gateway: GatewayServer):
    balanced, cheap, best = (
        simulate(gateway, COMPLEX, m) for m in ("auto", "auto:cheap", "auto:best")
    )
    assert simulate(gateway, COMPLEX, "auto:balanced")["candidates"] == balanced["candidates"]
    assert candidate(balanced, O3)["cost_penalty"] == 10
    assert candidate(cheap, O3)["cost_penalty"] == 20
    assert candidate(best, O3)["cost_penalty"] == 0
    assert best["chain"][0] == O3  # the best score for the task, whatever it costs
    simple = simulate(gateway, CODING, "auto:cheap")
    assert candidate(simple, simple["chain"][0])["cost_tier"] == "cheap"


BAD_CONFIGS: list[tuple[Any, str | None]] = [
    ({"bonuses": {"stickyness": 10}}, "bonuses.stickyness"),
    ({"bonus": 10}, "bonus"),
    ({"bonuses": {"stickiness": "25"}}, "bonuses.stickiness"),
    ({"bonuses": {"stickiness": True}}, "bonuses.stickiness"),
    ({"complexity_multipliers": {"simple": -0.1}}, "complexity_multipliers.simple"),
    ({"chain_length": 1.5}, "chain_length"),
    ({"chain_length": 0}, "chain_length"),
    ({"cost_tiers": {"cheap_below": 9}}, "cost_tiers.cheap_below"),
    ({"bonuses": 25}, "bonuses"),
    ({"classifier": {"model": "auto"}}, "classifier.model"),
    ([1, 2], None),
]


@pytest.mark.parametrize(("patch", "param"), BAD_CONFIGS)
def test_bad_config_is_refused_and_nothing_is_written(
    gateway: GatewayServer, patch: Any, param: str | None
):
    before = httpx.get(f"{gateway.base_url}/admin/router/config", headers=admin(gateway)).json()
    changes = len(history(gateway, entity="router_config"))
    response = put_config(gateway, patch)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    after = httpx.get(f"{gateway.base_url}/admin/router/config", headers=admin(gateway)).json()
    assert after == before
    assert len(history(gateway, entity="router_config")) == changes


def test_malformed_json_and_authorization(gateway: GatewayServer):
    url = f"{gateway.base_url}/admin/router/config"
    changes = len(history(gateway))
    assert httpx.put(url, headers=admin(gateway), content=b"{nope").status_code == 400
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {gateway.demo_key}"},
    ):
        response = httpx.put(url, headers=headers, json={"bonuses": {"stickiness": 1}})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        for path in ("/admin/router/config", "/admin/router/profiles", "/admin/history"):
            assert httpx.get(f"{gateway.base_url}{path}", headers=headers).status_code == 401
        simulated = httpx.post(
            f"{gateway.base_url}/admin/router/simulate",
            headers=headers,
            json={"messages": [{"role": "user", "content": "hi"}]},
        )
        assert simulated.status_code == 401
    assert len(history(gateway)) == changes


def test_history_records_who_when_old_new_why_and_rollback_restores(gateway: GatewayServer):
    url = f"{gateway.base_url}/admin/router/config"
    original = httpx.get(url, headers=admin(gateway)).json()["config"]
    first = put_config(gateway, {"bonuses": {"stickiness": 30}}, reason="stick harder").json()
    second = put_config(gateway, {"chain_length": 2}, reason="shorter chains").json()
    entries = history(gateway, entity="router_config")
    assert [e["id"] for e in entries[:2]] == [second["history_id"], first["history_id"]]
    newest, older = entries[0], entries[1]
    assert (older["actor"], older["action"], older["reason"]) == ("admin", "update", "stick harder")
    assert older["old"] == original
    assert older["new"]["bonuses"]["stickiness"] == 30
    assert newest["old"] == older["new"]
    assert newest["new"]["chain_length"] == 2
    assert newest["at"] >= older["at"]

    # Roll back the first change: the state before it, exactly (the later change goes too,
    # since the rollback restores the whole document as it was).
    response = httpx.post(
        f"{gateway.base_url}/admin/history/{first['history_id']}/rollback", headers=admin(gateway)
    )
    assert response.status_code == 200, response.text
    assert httpx.get(url, headers=admin(gateway)).json()["config"] == original
    restored = history(gateway, entity="router_config")[0]
    assert restored["reason"] == f"rollback of change {first['history_id']}"
    assert restored["old"] == newest["new"]
    assert restored["new"] == original
    one = httpx.get(f"{gateway.base_url}/admin/history/{restored['id']}", headers=admin(gateway))
    assert one.json() == restored
    missing = httpx.post(
        f"{gateway.base_url}/admin/history/999999/rollback", headers=admin(gateway)
    )
    assert missing.status_code == 404


def test_profiles_are_edited_validated_deleted_and_restored(gateway: GatewayServer):
    url = f"{gateway.base_url}/admin/router/profiles/{MINI41}"
    profile = httpx.get(url, headers=admin(gateway)).json()
    assert profile["scores"]["coding"] == 82
    assert profile["capabilities"]["vision"] is True
    listed = httpx.get(f"{gateway.base_url}/admin/router/profiles", headers=admin(gateway)).json()
    assert len(listed["data"]) == 35  # every seeded chat model

    changed = httpx.put(url, headers=admin(gateway), json={"scores": {"coding": 99}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["profile"]["scores"]["coding"] == 99
    assert changed.json()["profile"]["scores"]["creative"] == profile["scores"]["creative"]
    assert candidate(simulate(gateway, CODING), MINI41)["category_score"] == 99

    changes = len(history(gateway, entity="model_profile"))
    for bad, param in [
        ({"scores": {"coding": 101}}, "scores.coding"),
        ({"scores": {"poetry": 50}}, "scores.poetry"),
        ({"capabilities": {"vision": "yes"}}, "capabilities.vision"),
        ({"capabilities": {"teleport": True}}, "capabilities.teleport"),
        ({"speed_tier": "ludicrous"}, "speed_tier"),
        ({"quality": -1}, "quality"),
        ({"colour": "blue"}, "colour"),
    ]:
        response = httpx.put(url, headers=admin(gateway), json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == param
    unknown = httpx.put(
        f"{gateway.base_url}/admin/router/profiles/no-such-model",
        headers=admin(gateway),
        json=profile,
    )
    assert unknown.status_code == 404
    assert len(history(gateway, entity="model_profile")) == changes

    deleted = httpx.delete(url, headers=admin(gateway), params={"reason": "retire"})
    assert deleted.status_code == 200
    result = simulate(gateway, CODING)
    assert MINI41 not in [c["model"] for c in result["candidates"]]
    assert MINI41 not in [e["model"] for e in result["excluded"]]
    assert httpx.get(url, headers=admin(gateway)).status_code == 404
    # A partial document cannot create a profile: every score is required.
    partial = httpx.put(url, headers=admin(gateway), json={"scores": {"coding": 50}})
    assert partial.status_code == 400

    rollback = httpx.post(
        f"{gateway.base_url}/admin/history/{deleted.json()['history_id']}/rollback",
        headers=admin(gateway),
    )
    assert rollback.status_code == 200
    assert httpx.get(url, headers=admin(gateway)).json()["scores"]["coding"] == 99
    entries = history(gateway, entity="model_profile", entity_id=MINI41)
    assert [e["action"] for e in entries[:3]] == ["create", "delete", "update"]


def test_builtin_flag_ignores_the_database_config(
    make_gateway: Callable[..., GatewayServer],
):
    gw = make_gateway(env={"GATEWAY_ROUTER_CONFIG": "builtin"})
    assert put_config(gw, {"cost_penalties": {"mid": 50}}).status_code == 200
    shown = httpx.get(f"{gw.base_url}/admin/router/config", headers=admin(gw)).json()
    assert shown["source"] == "builtin"
    assert shown["config"]["cost_penalties"]["mid"] == 50
    assert shown["effective"]["cost_penalties"]["mid"] == 10
    assert candidate(simulate(gw, CODING), O3)["cost_penalty"] == 10


def test_a_draft_config_is_simulated_and_nothing_is_stored(gateway: GatewayServer):
    """Simulate with `config` decides as PUT would have made it, and stores nothing."""
    before = simulate(gateway, CODING)
    stored = httpx.get(f"{gateway.base_url}/admin/router/config", headers=admin(gateway)).json()
    changes_before = history(gateway, entity="router_config")
    for prompt, patch, model, preset, changes in KNOBS[:3]:
        drafted = simulate(gateway, prompt, preset or "auto", config=patch)
        assert drafted["draft"] is True
        assert candidate(drafted, model) == {**candidate(before, model), **changes}
    bad = httpx.post(
        f"{gateway.base_url}/admin/router/simulate",
        headers=admin(gateway),
        json={"messages": [{"role": "user", "content": "hi"}], "config": {"chain_length": 0}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "config.chain_length"
    after = httpx.get(f"{gateway.base_url}/admin/router/config", headers=admin(gateway)).json()
    assert after == stored
    assert history(gateway, entity="router_config") == changes_before
    assert simulate(gateway, CODING)["draft"] is False
    knobs = {knob["path"]: knob for knob in stored["knobs"]}
    assert knobs["chain_length"] == {
        "path": "chain_length",
        "kind": "integer",
        "min": 1,
        "max": 10,
        "default": 3,
    }
    assert knobs["complexity_multipliers.simple"]["default"] == 0.7
    assert len(knobs) == len(stored["knobs"]) == 23
