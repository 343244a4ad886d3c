"""POST /v1/messages: the anthropic SDK against the gateway, metered like any request."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=gateway.base_url, api_key=gateway.demo_key, max_retries=0
    ) as sdk:
        yield sdk


def mini_cost(fake: FakeOpenAI) -> int:
    usage = fake.responses[-1]["usage"]
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")


def test_message_through_the_anthropic_sdk(client, gateway: GatewayServer, fake_openai):
    raw = client.messages.with_raw_response.create(
        model=MINI,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello from anthropic"}],
    )
    message = raw.parse()
    sent = fake_openai.requests[-1]["json"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 64
    cost = mini_cost(fake_openai)
    assert message.content[0].text == "Echo: hello from anthropic"  # type: ignore[union-attr]
    assert message.model == MINI and message.stop_reason == "end_turn"
    usage = fake_openai.responses[-1]["usage"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    assert gateway.balance() == START - cost


def test_streaming_through_the_anthropic_sdk(client, gateway: GatewayServer, fake_openai):
    with client.messages.stream(
        model=MINI, max_tokens=64, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream it"
    assert final.stop_reason == "end_turn"
    cost = mini_cost(fake_openai)
    assert final.usage.output_tokens == fake_openai.responses[-1]["usage"]["completion_tokens"]
    assert gateway.balance() == START - cost


def test_tool_use_through_the_anthropic_sdk(client, gateway: GatewayServer, fake_openai):
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    tools = [
        {
            "name": "get_weather",
            "description": "weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    first = client.messages.create(
        model=MINI,
        max_tokens=64,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    use = first.content[0]
    assert (use.type, use.name, use.input) == ("tool_use", "get_weather", {"city": "Paris"})  # type: ignore[union-attr]
    fake_openai.tool_call = None
    second = client.messages.create(
        model=MINI,
        max_tokens=64,
        tools=tools,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [use.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
            },  # type: ignore[union-attr]
        ],
    )
    sent = fake_openai.requests[-1]["json"]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "tool_call_id": use.id, "content": "sunny"}  # type: ignore[union-attr]
    assert second.content[0].text == "Echo: weather in Paris?"  # type: ignore[union-attr]
    assert len(gateway.charges()) == 2


def test_errors_reach_the_anthropic_sdk(gateway: GatewayServer, fake_openai):
    bad = anthropic.Anthropic(base_url=gateway.base_url, api_key="nope", max_retries=0)
    with bad, pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=MINI, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert fake_openai.calls == 0 and gateway.balance() == START
