"""`model: "auto"` end to end: the openai SDK -> gateway -> fake OpenAI upstream.
Routed as the simulation says, served, billed at the chosen model's price."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from config_store.catalogue import DEMO_MODELS
from config_store.router_config import CATEGORIES
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano, usd_text
from tests.test_router_admin import admin, put_config, simulate

PRICES = {m.model_id: m for m in DEMO_MODELS}
START = 100 * 10**9
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
O1MINI = "o1-mini-2024-09-12"  # text only: no vision, no tools


def cost_of(model_id: str, usage: dict[str, int]) -> int:
    model = PRICES[model_id]
    return expected_cost_nano(
        usage["prompt_tokens"],
        usage["completion_tokens"],
        str(model.input_price_per_million),
        str(model.output_price_per_million),
    )


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=gateway.demo_key, max_retries=0
    ) as sdk:
        yield sdk


def ask(
    client: openai.OpenAI, content: Any, model: str = "auto", **extra: Any
) -> tuple[Any, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **extra
    )
    return raw.parse(), raw.headers


def test_auto_is_routed_as_simulated_served_and_billed_at_the_chosen_price(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    text = "Hi! How are you today?"
    chosen = simulate(gateway, text)["chain"][0]
    completion, headers = ask(client, text)
    assert completion.model == chosen
    assert headers["x-gateway-model"] == chosen
    assert headers["x-gateway-route-category"] == "conversation"
    assert headers["x-gateway-route-complexity"] == "simple"
    assert headers["x-gateway-route-preset"] == "balanced"
    [sent] = fake_openai.requests
    assert sent["json"]["model"] == PRICES[chosen].upstream_name
    usage = fake_openai.responses[-1]["usage"]
    cost = cost_of(chosen, usage)
    assert body_cost(completion.usage.model_extra) == usd_text(cost)
    assert headers["x-gateway-cost-usd"] == usd_text(cost)
    assert gateway.balance() == START - cost
    [row] = gateway.charges()
    assert (row["model_id"], row["amount_nano"]) == (chosen, -cost)


@pytest.mark.parametrize("preset", ["auto:cheap", "auto:balanced", "auto:best"])
def test_each_preset_routes_as_simulated(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI, preset: str
):
    text = "Explain step by step and in detail how to design a rate limiter."
    chosen = simulate(gateway, text, preset)["chain"][0]
    completion, headers = ask(client, text, model=preset)
    assert completion.model == chosen
    assert headers["x-gateway-route-preset"] == preset.split(":")[1]
    assert gateway.charges()[0]["amount_nano"] == -cost_of(
        chosen, fake_openai.responses[-1]["usage"]
    )


def test_presets_choose_differently(gateway: GatewayServer):
    text = "Write a Python function that sorts a list."
    cheap, best = (simulate(gateway, text, p)["chain"][0] for p in ("auto:cheap", "auto:best"))
    assert cheap != best
    assert PRICES[cheap].input_price_per_million < PRICES[best].input_price_per_million


def test_auto_streams_with_the_chosen_model(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    text = "Write a haiku about autumn rain."
    chosen = simulate(gateway, text)["chain"][0]
    with client.chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    ) as raw:
        assert raw.headers["x-gateway-model"] == chosen
        assert raw.headers["x-gateway-route-category"] == "creative"
        chunks = list(raw.parse())
    assert {chunk.model for chunk in chunks} == {chosen}
    final = chunks[-1].usage
    assert final is not None
    cost = cost_of(chosen, fake_openai.responses[-1]["usage"])
    assert body_cost(final.model_extra) == usd_text(cost)
    assert gateway.balance() == START - cost


def test_a_vision_request_never_routes_to_a_text_only_model(
    client: openai.OpenAI, gateway: GatewayServer
):
    # Make the text-only o1-mini the best model at everything, multimodal included.
    everything = dict.fromkeys(CATEGORIES, 100)
    response = httpx.put(
        f"{gateway.base_url}/admin/router/profiles/{O1MINI}",
        headers=admin(gateway),
        json={"quality": 100, "scores": everything},
    )
    assert response.status_code == 200, response.text
    _text_only, headers = ask(client, "What is in this picture?", model="auto:best")
    assert headers["x-gateway-model"] == O1MINI  # without an image it wins

    parts = [{"type": "text", "text": "What is in this picture?"}, IMAGE]
    result = simulate(gateway, parts, "auto:best")  # type: ignore[arg-type]
    assert result["needs"] == ["vision"]
    assert {"model": O1MINI, "reason": "lacks vision", "cause": "request"} in result["excluded"]
    profiles = httpx.get(f"{gateway.base_url}/admin/router/profiles", headers=admin(gateway))
    vision = {p["model_id"] for p in profiles.json()["data"] if p["capabilities"]["vision"]}
    assert set(result["chain"]) <= vision
    assert {c["model"] for c in result["candidates"]} <= vision
    completion, headers = ask(client, parts, model="auto:best")
    assert headers["x-gateway-model"] in vision
    assert headers["x-gateway-route-category"] == "multimodal"
    assert completion.model != O1MINI


def test_a_conversation_sticks_to_its_model_across_turns(
    client: openai.OpenAI, gateway: GatewayServer
):
    system = {"role": "system", "content": "You are a friendly companion."}
    turn_one = [system, {"role": "user", "content": "Hi! How are you today?"}]
    first = client.chat.completions.create(model="auto", messages=turn_one)
    model = first.model
    # Lower that model's score so that, without stickiness, another model would win.
    current = httpx.get(
        f"{gateway.base_url}/admin/router/profiles/{model}", headers=admin(gateway)
    ).json()
    lowered = current["scores"]["conversation"] - 20
    httpx.put(
        f"{gateway.base_url}/admin/router/profiles/{model}",
        headers=admin(gateway),
        json={"scores": {"conversation": lowered}},
    ).raise_for_status()
    fresh = simulate(gateway, "Hi! How are you today?")["chain"][0]
    assert fresh != model

    turn_two = [
        *turn_one,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Tell me about your favourite things to chat about."},
    ]
    second = client.chat.completions.with_raw_response.create(model="auto", messages=turn_two)
    assert second.parse().model == model  # the same conversation: sticky
    # A different conversation (another first message) is routed afresh.
    other = client.chat.completions.create(
        model="auto", messages=[system, {"role": "user", "content": "Hello! How is it going?"}]
    )
    assert other.model != model

    # The simulation, for this user and conversation, shows the bonus term.
    response = httpx.post(
        f"{gateway.base_url}/admin/router/simulate",
        headers=admin(gateway),
        params={"user": "demo"},
        json={"model": "auto", "messages": turn_two},
    )
    result = response.json()
    assert result["sticky_model"] == model
    sticky = next(c for c in result["candidates"] if c["model"] == model)
    assert sticky["stickiness_bonus"] == 25
    assert result["chain"][0] == model

    # A draft that turns stickiness off is simulated without it, and the live
    # memory is untouched: the next simulation and the next turn still stick.
    def simulate_turn_two(**extra: Any) -> dict[str, Any]:
        body = {"model": "auto", "messages": turn_two, **extra}
        response = httpx.post(
            f"{gateway.base_url}/admin/router/simulate",
            headers=admin(gateway),
            params={"user": "demo"},
            json=body,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    drafted = simulate_turn_two(config={"sticky_conversations": 0})
    assert drafted["sticky_model"] is None
    assert simulate_turn_two()["sticky_model"] == model
    third = client.chat.completions.create(model="auto", messages=turn_two)
    assert third.model == model


def test_an_explicit_conversation_id_and_a_lost_capability(
    client: openai.OpenAI, gateway: GatewayServer
):
    headers = {"x-conversation-id": "thread-42"}
    first = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Hi there!"}],
        extra_headers=headers,
    )
    model = first.model
    # The sticky model loses vision; the next turn sends an image: it is not kept.
    httpx.put(
        f"{gateway.base_url}/admin/router/profiles/{model}",
        headers=admin(gateway),
        json={"capabilities": {"vision": False}},
    ).raise_for_status()
    second = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": [{"type": "text", "text": "And this?"}, IMAGE]}],
        extra_headers=headers,
    )
    assert second.model != model


def test_the_ranked_list_is_the_fallback_chain(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    text = "Hi! How are you today?"
    chain = simulate(gateway, text)["chain"]
    fake_openai.fail_next = [(500, "boom")]
    completion, _headers = ask(client, text)
    assert completion.model == chain[1]
    assert [r["json"]["model"] for r in fake_openai.requests] == [
        PRICES[chain[0]].upstream_name,
        PRICES[chain[1]].upstream_name,
    ]
    [row] = gateway.charges()
    assert row["amount_nano"] == -cost_of(chain[1], fake_openai.responses[-1]["usage"])


def test_a_classifier_model_decides_and_is_billed(
    client: openai.OpenAI,
    gateway: GatewayServer,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
):
    classifier = "gpt-4.1-nano-2025-04-14"
    fake_openai.replies[classifier] = '{"category": "creative", "complexity": "complex"}'
    # A budget no loaded machine exceeds: this test is about the classifier deciding.
    patch = {"classifier": {"model": classifier, "timeout_ms": 60_000}}
    assert put_config(gateway, patch).status_code == 200
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        completion, headers = ask(client, "What is the capital of France?")
    assert headers["x-gateway-route-category"] == "creative"  # the model's answer, not "factual"
    assert headers["x-gateway-route-complexity"] == "complex"
    asked, served = fake_openai.requests
    assert asked["json"]["model"] == classifier
    assert served["json"]["model"] == completion.model
    classify_usage, serve_usage = (r["usage"] for r in fake_openai.responses)
    rows = gateway.charges()
    assert sorted(r["amount_nano"] for r in rows) == sorted(
        [-cost_of(classifier, classify_usage), -cost_of(completion.model, serve_usage)]
    )
    assert gateway.balance() == START + sum(r["amount_nano"] for r in rows)
    # The client's request keeps the id it entered with; the classifier's call has its own.
    ids = {r["model_id"]: r["request_id"] for r in rows}
    assert ids[completion.model] == headers["x-request-id"] != ids[classifier]
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert (line["request_id"], line["model"]) == (headers["x-request-id"], completion.model)


def test_a_slow_classifier_model_falls_back_to_the_local_classifier(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    classifier = "gpt-4.1-nano-2025-04-14"
    fake_openai.replies[classifier] = '{"category": "creative", "complexity": "complex"}'
    patch = {"classifier": {"model": classifier, "timeout_ms": 50}}
    assert put_config(gateway, patch).status_code == 200
    fake_openai.delay = 0.4
    completion, headers = ask(client, "What is the capital of France?")
    assert headers["x-gateway-route-category"] == "factual"
    # The abandoned classifier call was not charged; the answer was.
    [row] = gateway.charges()
    assert row["model_id"] == completion.model
    assert gateway.balance() == START + row["amount_nano"]


def test_generate_and_errors(gateway: GatewayServer):
    auth = {"Authorization": f"Bearer {gateway.demo_key}"}
    generated = httpx.post(
        f"{gateway.base_url}/v1/generate",
        headers=auth,
        json={"model": "auto", "prompt": "Compose a haiku about the sea."},
    )
    assert generated.status_code == 200, generated.text
    assert generated.json()["model"] == generated.headers["x-gateway-model"]
    assert generated.headers["x-gateway-route-category"] == "creative"

    unknown = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers=auth,
        json={"model": "auto:fastest", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    embedding = httpx.post(
        f"{gateway.base_url}/v1/embeddings", headers=auth, json={"model": "auto", "input": "x"}
    )
    assert embedding.status_code == 400
    assert embedding.json()["error"]["code"] == "unsupported_model"
    too_long = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers=auth,
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5_000_000,
        },
    )
    assert too_long.status_code == 400
    error = too_long.json()["error"]
    assert (error["code"], error["param"]) == ("no_route", "model")
    assert "maximum context length" in error["message"]
    assert gateway.charges() == [gateway.charges()[0]]  # only the generate request


def test_a_provider_in_cooldown_is_not_a_candidate(make_gateway: Any, fake_openai: FakeOpenAI):
    gw = make_gateway(env={"GATEWAY_COOLDOWN_FAILURES": "1"})
    auth = {"Authorization": f"Bearer {gw.demo_key}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "Hi! How are you?"}]}
    fake_openai.fail_next = [(500, "down")] * 5
    failed = httpx.post(f"{gw.base_url}/v1/chat/completions", headers=auth, json=body)
    assert failed.status_code in (502, 503)
    result = simulate(gw, "Hi! How are you?")
    assert result["chain"] == ["mock-1"]  # every openai model waits out the cooldown
    assert {e["cause"] for e in result["excluded"] if e["model"].startswith("gpt")} == {"cooldown"}
    served = httpx.post(f"{gw.base_url}/v1/chat/completions", headers=auth, json=body)
    assert served.status_code == 200
    assert served.headers["x-gateway-model"] == "mock-1"
    assert len(gw.charges()) == 1
