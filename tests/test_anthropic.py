"""Claude behind the OpenAI API: the openai SDK -> gateway -> fake Anthropic server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal

import openai
import pytest

from config_store.catalogue import DEMO_MODELS
from gateway.providers.anthropic import build_body
from gateway.providers.base import ChatCall
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.harness import GatewayServer, body_cost, usd_text

HAIKU = "claude-3-5-haiku-20241022"  # 0.80 in, 0.08 cache read, 1.00 cache write, 4.00 out
START = 100 * 10**9


def haiku_cost(usage: dict[str, int]) -> int:
    """Computed here from the fake's own usage, independently of billing.pricing."""
    usd = (
        Decimal(usage["input_tokens"]) * Decimal("0.80")
        + Decimal(usage["cache_read_input_tokens"]) * Decimal("0.08")
        + Decimal(usage["cache_creation_input_tokens"]) * Decimal("1.00")
        + Decimal(usage["output_tokens"]) * Decimal("4.00")
    ) / 10**6
    nano = usd * Decimal("1.1") * 10**9
    return int(nano.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def claude_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def claude(claude_server: FakeAnthropic) -> FakeAnthropic:
    claude_server.reset()
    return claude_server


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayServer], claude: FakeAnthropic) -> GatewayServer:
    return make_gateway(
        env={"ANTHROPIC_BASE_URL": claude.base_url, "ANTHROPIC_API_KEY": claude.api_key}
    )


@pytest.fixture
def sdk(gw: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0) as c:
        yield c


def test_request_translation_is_pure():
    model = next(m for m in DEMO_MODELS if m.model_id == HAIKU)
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"x": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "thanks"},
        ],
        "stop": "END",
        "temperature": 0.3,
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {}}}],
        "tool_choice": "required",
    }
    call = ChatCall(body, model, None, "http://x", "k", None)  # type: ignore[arg-type]
    out = build_body(call, stream=False)
    assert out["system"] == "Be brief."
    assert out["max_tokens"] == 8192
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    images = [b["source"] for b in out["messages"][0]["content"] if b["type"] == "image"]
    assert images == [
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        {"type": "url", "url": "https://example.test/cat.jpg"},
    ]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "look", "input": {"x": 1}}
    ]
    assert out["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": "a cat",
    }
    assert (out["stop_sequences"], out["temperature"]) == (["END"], 0.3)
    assert out["tool_choice"] == {"type": "any"}


def test_text_with_cache_tokens_is_charged_exactly(sdk, gw, claude: FakeAnthropic):
    # A long system prompt, cached: the hold covers every token of the fake's usage.
    system = "Be kind. " * 400
    claude.cache_read, claude.cache_write = 1000, 200
    raw = sdk.chat.completions.with_raw_response.create(
        model=HAIKU,
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": "hello claude"},
        ],
        max_tokens=50,
    )
    completion = raw.parse()
    sent = claude.requests[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-fake"
    assert sent["json"]["system"] == system and sent["json"]["max_tokens"] == 50
    usage = claude.responses[-1]["usage"]
    cost = haiku_cost(usage)
    assert completion.choices[0].message.content == "Echo: hello claude"
    assert completion.model == HAIKU
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == usage["input_tokens"] + 1200
    assert body_cost(completion.usage.model_extra) == usd_text(cost)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1000
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    [row] = gw.charges()
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (1000, 200)
    assert gw.balance() == START - cost


def test_streaming_with_usage(sdk, gw, claude: FakeAnthropic):
    chunks = list(
        sdk.chat.completions.create(
            model=HAIKU,
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    cost = haiku_cost(claude.responses[-1]["usage"])
    assert chunks[-1].usage is not None
    assert body_cost(chunks[-1].usage.model_extra) == usd_text(cost)
    assert gw.balance() == START - cost


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(sdk, gw, claude: FakeAnthropic, stream: bool):
    claude.tool_use = {"name": "get_weather", "input": {"city": "Paris"}}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        chunks = list(
            sdk.chat.completions.create(model=HAIKU, messages=messages, tools=tools, stream=True)
        )  # type: ignore[arg-type]
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
        call_id, name = calls[0].id, calls[0].function.name  # type: ignore[union-attr]
        arguments = "".join(tc.function.arguments or "" for tc in calls)  # type: ignore[union-attr]
    else:
        first = sdk.chat.completions.create(model=HAIKU, messages=messages, tools=tools)  # type: ignore[arg-type]
        assert first.choices[0].finish_reason == "tool_calls"
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments  # type: ignore[union-attr]
    assert (call_id, name, json.loads(arguments)) == ("toolu_1", "get_weather", {"city": "Paris"})
    claude.tool_use = None
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    second = sdk.chat.completions.create(model=HAIKU, messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "Echo: sunny"
    sent = claude.requests[-1]["json"]["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "sunny",
    }
    assert gw.balance() == START - sum(haiku_cost(r["usage"]) for r in claude.responses)


def test_images_reach_claude(sdk, claude: FakeAnthropic):
    sdk.chat.completions.create(
        model=HAIKU,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                ],
            }
        ],
    )  # type: ignore[list-item]
    blocks = claude.requests[-1]["json"]["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
    }


def test_upstream_failure_is_502_and_not_charged(sdk, gw, claude: FakeAnthropic):
    claude.fail_next = [(529, "overloaded")]
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert "overloaded" in caught.value.message
    assert gw.balance() == START and gw.charges() == []
