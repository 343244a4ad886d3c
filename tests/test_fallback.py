"""Fault tests: the primary fails (500, 429, timeout, refused, mid-stream) and the
configured fallback serves, or the expected error arrives; the ledger holds exactly
the charges of the served requests, at the serving model's price."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"  # 0.15 / 0.60 on the fake "openai" provider
BACKUP = "backup-mini"  # 1.00 / 2.00 on the fake "backup" provider
START = 100 * 10**9


@pytest.fixture(scope="module")
def backup_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def backup(backup_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    backup_server.reset()
    yield backup_server


@pytest.fixture
def chained(
    make_gateway: Callable[..., GatewayServer], backup: FakeOpenAI
) -> Callable[..., GatewayServer]:
    def make(**env: str) -> GatewayServer:
        gw = make_gateway(env=env)
        gw.execute(
            "INSERT INTO providers (id, kind, base_url, api_key) VALUES ('backup', 'openai', ?, ?)",
            backup.base_url,
            "sk-fake-upstream",
        )
        gw.execute(
            "INSERT INTO model_configurations (id, model_id, provider, input_price_per_million,"
            " output_price_per_million, context_window_size, max_output_tokens, created_at)"
            " VALUES ('990', ?, 'backup', '1.00', '2.00', 128000, 16384, '2024-01-01T00:00:00')",
            BACKUP,
        )
        gw.execute(
            "UPDATE model_configurations SET fallbacks = ? WHERE model_id = ?",
            json.dumps([BACKUP]),
            MINI,
        )
        gw.refresh()
        return gw

    return make


def ask(gw: GatewayServer, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": "fall back"}], **extra},
        timeout=30,
    )


def backup_cost(fake: FakeOpenAI) -> int:
    usage = fake.responses[-1]["usage"]
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "1.00", "2.00")


@pytest.mark.parametrize("failure", [(500, "primary down"), (429, "slow down"), (503, "busy")])
def test_retryable_failure_falls_back_and_charges_the_fallback_price(
    chained, fake_openai: FakeOpenAI, backup: FakeOpenAI, failure: tuple[int, str]
):
    gw = chained()
    fake_openai.fail_next = [failure]
    response = ask(gw)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == BACKUP
    assert response.headers["x-gateway-model"] == BACKUP
    assert response.json()["choices"][0]["message"]["content"] == "Echo: fall back"
    assert (fake_openai.calls, backup.calls) == (1, 1)
    cost = backup_cost(backup)
    assert response.headers["x-gateway-cost-usd"] == f"0.{cost:09d}"
    [row] = gw.charges()
    assert (row["model_id"], row["provider"], row["amount_nano"]) == (BACKUP, "backup", -cost)
    assert gw.balance() == START - cost


def test_timeout_of_the_primary_falls_back(chained, fake_openai: FakeOpenAI, backup: FakeOpenAI):
    gw = chained()
    gw.execute("UPDATE providers SET read_timeout = 0.3 WHERE id = 'openai'")
    gw.refresh()
    fake_openai.delay = 1.0
    response = ask(gw)
    assert response.status_code == 200 and response.json()["model"] == BACKUP
    assert gw.balance() == START - backup_cost(backup)


def test_refused_connection_falls_back(chained, backup: FakeOpenAI):
    gw = chained(OPENAI_BASE_URL="http://127.0.0.1:9/v1")  # nothing listens on port 9
    response = ask(gw)
    assert response.status_code == 200 and response.json()["model"] == BACKUP
    assert gw.balance() == START - backup_cost(backup)


def test_streams_fall_back_before_the_first_chunk(
    chained, fake_openai: FakeOpenAI, backup: FakeOpenAI
):
    gw = chained()
    fake_openai.fail_next = [(500, "down")]
    with httpx.stream(
        "POST",
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={
            "model": MINI,
            "messages": [{"role": "user", "content": "fall back"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        assert response.headers["x-gateway-model"] == BACKUP
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {BACKUP}
    cost = backup_cost(backup)
    assert body_cost(chunks[-1]["usage"]) == f"0.{cost:09d}"
    assert gw.balance() == START - cost


def test_no_fallback_after_the_first_byte(chained, fake_openai: FakeOpenAI, backup: FakeOpenAI):
    gw = chained()
    fake_openai.close_mid_stream_after = 1
    with httpx.stream(
        "POST",
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": "a b c"}], "stream": True},
    ) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert json.loads(events[-1])["error"]["code"] == "upstream_error"
    assert backup.calls == 0
    [row] = gw.charges()  # what was relayed, at the primary's price
    assert row["model_id"] == MINI


def test_failing_everywhere_is_not_charged(chained, fake_openai: FakeOpenAI, backup: FakeOpenAI):
    gw = chained()
    fake_openai.fail_next = [(500, "primary down")]
    backup.fail_next = [(502, "backup down")]
    response = ask(gw)
    assert response.status_code == 502
    assert "backup down" in response.json()["error"]["message"]
    assert gw.charges() == [] and gw.balance() == START


def test_client_errors_do_not_fall_back(chained, fake_openai: FakeOpenAI, backup: FakeOpenAI):
    gw = chained()
    fake_openai.fail_next = [(400, "bad parameter")]
    response = ask(gw)
    assert response.status_code == 400
    assert backup.calls == 0 and gw.balance() == START


def test_a_failing_provider_cools_down(chained, fake_openai: FakeOpenAI, backup: FakeOpenAI):
    gw = chained(GATEWAY_COOLDOWN_FAILURES="2", GATEWAY_COOLDOWN_SECONDS="60")
    fake_openai.fail_next = [(500, "one"), (500, "two")]
    assert [ask(gw).json()["model"] for _ in range(3)] == [BACKUP, BACKUP, BACKUP]
    assert fake_openai.calls == 2  # the third request skipped the cooling provider
    health = httpx.get(f"{gw.base_url}/health").json()
    assert [c["name"] for c in health["cooling_down"]] == [f"model:{MINI}", "openai"]
    assert len(gw.charges()) == 3


def test_without_fallbacks_the_primary_error_arrives(gateway: GatewayServer, fake_openai):
    fake_openai.fail_next = [(500, "down")]
    response = ask(gateway)
    assert response.status_code == 502 and gateway.charges() == []


def test_a_fallback_provider_keeps_its_own_rate_limit(
    chained, fake_openai: FakeOpenAI, backup: FakeOpenAI
):
    gw = chained()
    gw.execute("UPDATE providers SET rpm = 1 WHERE id = 'backup'")
    gw.refresh()
    fake_openai.fail_next = [(500, "one"), (500, "two")]
    assert ask(gw).json()["model"] == BACKUP
    refused = ask(gw)  # the primary fails again and the backup has used its one request
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert backup.calls == 1 and len(gw.charges()) == 1


def test_a_short_retry_after_is_waited_out_on_the_same_model(
    chained, fake_openai: FakeOpenAI, backup: FakeOpenAI
):
    gw = chained()
    fake_openai.fail_next = [(429, "slow down", "1")]  # type: ignore[list-item]
    started = time.monotonic()
    response = ask(gw)
    assert response.status_code == 200 and response.json()["model"] == MINI
    assert time.monotonic() - started >= 1.0
    assert (fake_openai.calls, backup.calls) == (2, 0)


def test_a_long_retry_after_moves_to_the_next_model(
    chained, fake_openai: FakeOpenAI, backup: FakeOpenAI
):
    gw = chained()
    fake_openai.fail_next = [(429, "slow down", "30")]  # type: ignore[list-item]
    response = ask(gw)
    assert response.json()["model"] == BACKUP
    assert (fake_openai.calls, backup.calls) == (1, 1)
