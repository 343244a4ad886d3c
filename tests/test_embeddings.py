"""/v1/embeddings through the openai SDK, metered on input tokens."""

from __future__ import annotations

import httpx
import openai

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano, usd_text

START = 100 * 10**9


def test_embeddings_are_charged_for_their_input(gateway: GatewayServer, fake_openai: FakeOpenAI):
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=gateway.demo_key) as sdk:
        raw = sdk.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["one two three", "four five"]
        )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [[0.5, -0.25, 0.0], [0.5, -0.25, 1.0]]
    assert result.model == "text-embedding-3-small"
    assert result.usage.prompt_tokens == 5
    cost = expected_cost_nano(5, 0, "0.02", "0")  # 5 x 0.02 x 1000 x 1.1 = 110
    assert cost == 110
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    assert body_cost(result.usage.model_extra) == usd_text(cost)
    [row] = gateway.charges()
    assert (row["model_id"], row["prompt_tokens"], row["amount_nano"]) == (
        "text-embedding-3-small",
        5,
        -cost,
    )
    assert gateway.balance() == START - cost


def test_modes_are_kept_apart(gateway: GatewayServer, fake_openai: FakeOpenAI):
    headers = {"Authorization": f"Bearer {gateway.demo_key}"}
    chat_on_embedding = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers=headers,
        json={"model": "text-embedding-3-small", "messages": [{"role": "user", "content": "x"}]},
    )
    embedding_on_chat = httpx.post(
        f"{gateway.base_url}/v1/embeddings",
        headers=headers,
        json={"model": "gpt-4o-mini-2024-07-18", "input": "x"},
    )
    bad_input = httpx.post(
        f"{gateway.base_url}/v1/embeddings",
        headers=headers,
        json={"model": "text-embedding-3-small", "input": [1.5]},
    )
    for response, code in (
        (chat_on_embedding, "unsupported_model"),
        (embedding_on_chat, "unsupported_model"),
        (bad_input, "invalid_type"),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code
    assert fake_openai.calls == 0 and gateway.balance() == START
