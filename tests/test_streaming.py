"""Streams that end early: the client leaves, or the provider drops the connection.
Either way the request is charged for what was generated, once."""

from __future__ import annotations

import json
import time

import httpx

from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, o200k

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9


def stream_body(content: str) -> dict[str, object]:
    return {"model": MINI, "messages": [{"role": "user", "content": content}], "stream": True}


def wait_for_charge(gw: GatewayServer, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = gw.charges()
        if rows:
            assert len(rows) == 1
            return rows[0]
        time.sleep(0.05)
    raise AssertionError("no ledger row was written")


def assert_charged_for_what_was_relayed(gw: GatewayServer, content: str, relayed: str) -> None:
    """One ledger row, for the prompt and the output relayed at gpt-4o-mini's prices
    (the user's content in one message: 3 tokens of framing for it, 3 for the answer)."""
    row = wait_for_charge(gw)
    prompt = 3 + 3 + len(o200k().encode(content))
    completion = len(o200k().encode(relayed))
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    cost = expected_cost_nano(prompt, completion, "0.15", "0.60")
    assert row["amount_nano"] == -cost
    assert gw.balance() == START - cost


def test_client_disconnect_mid_stream_is_charged_for_what_was_relayed(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    words = " ".join(f"word{i}" for i in range(200))
    fake_openai.stream_chunk_delay = 0.05
    headers = {"Authorization": f"Bearer {gateway.demo_key}"}
    received = 0
    with httpx.stream(
        "POST", f"{gateway.base_url}/v1/chat/completions", json=stream_body(words), headers=headers
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                received += 1
            if received == 6:
                break  # leaving closes the connection
    row = wait_for_charge(gateway)
    prompt_estimate = 3 + 3 + len(o200k().encode(words))
    assert row["prompt_tokens"] == prompt_estimate
    # at least what the client saw, far less than the whole answer (10 s of chunks)
    assert 5 <= int(row["completion_tokens"]) < 200  # type: ignore[call-overload]
    cost = expected_cost_nano(prompt_estimate, int(row["completion_tokens"]), "0.15", "0.60")  # type: ignore[call-overload]
    assert row["amount_nano"] == -cost
    time.sleep(0.3)
    assert gateway.balance() == START - cost
    assert len(gateway.charges()) == 1
    # the gateway dropped the upstream connection: the fake never finished its answer
    assert fake_openai.responses == []
    assert Admin(gateway).ok(Admin(gateway).get("/admin/users/demo"))["held_nano"] == 0


def test_upstream_drop_mid_stream_ends_with_an_error_and_charges_what_was_relayed(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.close_mid_stream_after = 3
    content = "one two three four five six seven"
    headers = {"Authorization": f"Bearer {gateway.demo_key}"}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/v1/chat/completions",
        json=stream_body(content),
        headers=headers,
    ) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_error" and "closed the connection" in error["message"]
    relayed = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in json.loads(event)["choices"]
    )
    assert relayed.startswith("Echo: one")
    assert_charged_for_what_was_relayed(gateway, content, relayed)
