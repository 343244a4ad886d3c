"""GET /metrics in Prometheus' text format, and one JSON log line per request."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"


def scrape(gw: GatewayServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{gw.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def chat(gw: GatewayServer, model: str = MINI, key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key or gw.demo_key}"},
        json={"model": model, "messages": [{"role": "user", "content": "say something secret"}]},
    )


def test_counters_move_by_exactly_the_requests_made(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    before = scrape(gateway)
    for _ in range(3):
        assert chat(gateway).status_code == 200
    assert chat(gateway, model="no-such-model").status_code == 404
    assert chat(gateway, key="wrong").status_code == 401
    after = scrape(gateway)
    route = "/v1/chat/completions"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    labels = {"route": route, "model": MINI, "provider": "openai", "status": "200"}
    assert delta("gateway_requests_total", **labels) == 3
    # A model name the catalogue does not know is counted as "other": labels stay bounded.
    assert (
        delta("gateway_requests_total", route=route, model="other", provider="-", status="404") == 1
    )
    assert delta("gateway_requests_total", route=route, model="-", provider="-", status="401") == 1
    assert delta("gateway_request_duration_seconds_count", route=route) == 5
    assert delta("gateway_upstream_duration_seconds_count", provider="openai") == 3
    usage = fake_openai.responses[-1]["usage"]
    assert delta("gateway_tokens_total", model=MINI, direction="in") == 3 * usage["prompt_tokens"]
    assert (
        delta("gateway_tokens_total", model=MINI, direction="out") == 3 * usage["completion_tokens"]
    )
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert delta("gateway_cost_nano_usd_total", model=MINI) == 3 * cost
    assert delta("gateway_ledger_batch_rows_sum") == 3
    assert delta("gateway_cache_hits_total") >= 3
    assert delta("gateway_cache_misses_total") == 1
    # No label names a user, a key or a raw path.
    names = {k for (_, labels_) in after for k, _ in labels_}
    assert names <= {"route", "model", "provider", "status", "direction", "outcome", "le"}


def test_one_json_log_line_per_request_without_secrets(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        ok = chat(gateway)
        refused = chat(gateway, key="wrong")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert len(lines) == 2
    served, denied = lines
    assert served["request_id"] == ok.headers["x-request-id"]
    assert (served["model"], served["provider"], served["status"]) == (MINI, "openai", 200)
    assert served["key_prefix"] == gateway.demo_key[:10]
    assert served["cost_usd"] == ok.headers["x-gateway-cost-usd"]
    assert served["prompt_tokens"] > 0 and served["latency_ms"] > 0
    assert (denied["status"], denied["error"], denied["model"]) == (401, "invalid_api_key", None)
    assert denied["request_id"] == refused.headers["x-request-id"] != served["request_id"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret" not in text and gateway.demo_key not in text and "sk-fake" not in text
    assert refused.status_code == 401


def test_a_refused_request_is_logged_and_counted_against_the_model_it_named(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
):
    poor = gateway.add_user("poor", balance_nano=0)
    before = scrape(gateway)
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        assert chat(gateway, key=poor).status_code == 402
        assert chat(gateway, model="auto", key=poor).status_code == 402
        assert chat(gateway, model="no-such-model").status_code == 404
    after = scrape(gateway)
    route = "/v1/chat/completions"

    def delta(**labels: str) -> float:
        return value(after, "gateway_requests_total", route=route, **labels) - value(
            before, "gateway_requests_total", route=route, **labels
        )

    assert delta(model=MINI, provider="openai", status="402") == 1
    assert delta(model="auto", provider="-", status="402") == 1
    assert delta(model="other", provider="-", status="404") == 1
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert [(line["model"], line["provider"], line["status"], line["error"]) for line in lines] == [
        (MINI, "openai", 402, "insufficient_quota"),
        ("auto", None, 402, "insufficient_quota"),
        ("no-such-model", None, 404, "model_not_found"),
    ]
    assert lines[0]["key_prefix"] == poor[:10]
