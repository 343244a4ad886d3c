"""The legacy /v1/completions endpoint through the openai SDK, streaming and not."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano, usd_text

INSTRUCT = "gpt-3.5-turbo-instruct"  # 1.50 in, 2.00 out
START = 100 * 10**9


@pytest.fixture
def sdk(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=gateway.demo_key) as c:
        yield c


def instruct_cost(fake: FakeOpenAI) -> int:
    usage = fake.responses[-1]["usage"]
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "1.50", "2.00")


def test_text_completion(sdk, gateway: GatewayServer, fake_openai: FakeOpenAI):
    raw = sdk.completions.with_raw_response.create(model=INSTRUCT, prompt="say three words")
    completion = raw.parse()
    assert completion.choices[0].text == "Echo: say three words"
    assert fake_openai.requests[-1]["json"].get("max_tokens") is None  # passed as sent
    cost = instruct_cost(fake_openai)
    assert completion.usage is not None and body_cost(completion.usage.model_extra) == usd_text(
        cost
    )
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    assert gateway.balance() == START - cost


def test_streamed_text_completion(sdk, gateway: GatewayServer, fake_openai: FakeOpenAI):
    chunks = list(
        sdk.completions.create(
            model=INSTRUCT,
            prompt="one two three four",
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Echo: one two"
    cost = instruct_cost(fake_openai)
    assert chunks[-1].object == "text_completion"
    assert chunks[-1].usage is not None
    assert body_cost(chunks[-1].usage.model_extra) == usd_text(cost)
    assert gateway.balance() == START - cost


def test_chat_models_are_not_text_completion_models(gateway: GatewayServer, fake_openai):
    response = httpx.post(
        f"{gateway.base_url}/v1/completions",
        headers={"Authorization": f"Bearer {gateway.demo_key}"},
        json={"model": "gpt-4o-mini-2024-07-18", "prompt": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_model"
    assert fake_openai.calls == 0
