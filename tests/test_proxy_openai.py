"""The metered path end to end: the real openai SDK -> gateway (uvicorn, real port)
-> fake OpenAI upstream (real HTTP server). Costs are checked to the nano-USD."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
import tiktoken

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano, usd_text

MINI = "gpt-4o-mini-2024-07-18"  # 0.15 in, 0.075 cached, 0.60 out per 1M
START = 100 * 10**9


def sync_client(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0)


def async_client(gw: GatewayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0)


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with sync_client(gateway) as sdk:
        yield sdk


@pytest.fixture
async def aclient(gateway: GatewayServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with async_client(gateway) as sdk:
        yield sdk


def mini_cost(usage: dict[str, int], cached: int = 0) -> int:
    return expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60", "10", cached, "0.075"
    )


def test_sync_non_streaming_is_charged_exactly(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    raw = client.chat.completions.with_raw_response.create(
        model=MINI,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there gateway"},
        ],
        max_tokens=50,
    )
    completion = raw.parse()
    sent = fake_openai.responses[-1]
    cost = mini_cost(sent["usage"])
    assert sent["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert cost == 4455  # (11 x 0.15 + 4 x 0.60) x 1000 x 1.1
    assert completion.choices[0].message.content == "Echo: Hello there gateway"
    assert completion.model == MINI
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 11
    assert completion.usage.completion_tokens == 4
    assert body_cost(completion.usage.model_extra) == usd_text(cost)
    assert raw.headers["x-gateway-cost-usd"] == "0.000004455"
    assert raw.headers["x-gateway-balance-usd"] == usd_text(START - cost)
    assert raw.headers["x-gateway-model"] == MINI
    assert gateway.balance() == START - cost
    [row] = gateway.charges()
    assert row["request_id"] == raw.headers["x-request-id"]
    assert (row["amount_nano"], row["prompt_tokens"], row["completion_tokens"]) == (-cost, 11, 4)
    assert json.loads(row["prices"]) == {
        "input_per_million": "0.15",
        "output_per_million": "0.60",
        "cache_read_per_million": "0.075",
        "cache_write_per_million": "0.15",
        "markup_percent": "10",
    }
    # the upstream got the provider's key, never the client's gateway key
    assert fake_openai.requests[-1]["headers"]["authorization"] == "Bearer sk-fake-upstream"


async def test_async_non_streaming(
    aclient: openai.AsyncOpenAI,
    client: openai.OpenAI,
    gateway: GatewayServer,
    fake_openai: FakeOpenAI,
):
    completion = await aclient.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": "one two three"}]
    )
    cost = mini_cost(fake_openai.responses[-1]["usage"])
    assert completion.choices[0].message.content == "Echo: one two three"
    assert completion.usage is not None and body_cost(completion.usage.model_extra) == usd_text(
        cost
    )
    assert gateway.balance() == START - cost


async def test_async_streaming_with_usage(
    aclient: openai.AsyncOpenAI,
    client: openai.OpenAI,
    gateway: GatewayServer,
    fake_openai: FakeOpenAI,
):
    stream = await aclient.chat.completions.create(
        model=MINI,
        messages=[{"role": "user", "content": "stream these five words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usages = "", []
    async for chunk in stream:
        assert chunk.model == MINI
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usages.append(chunk.usage)
    sent = fake_openai.responses[-1]
    cost = mini_cost(sent["usage"])
    assert text == "Echo: stream these five words"
    [usage] = usages
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        sent["usage"]["prompt_tokens"],
        sent["usage"]["completion_tokens"],
    )
    assert body_cost(usage.model_extra) == usd_text(cost)
    assert gateway.balance() == START - cost
    assert len(gateway.charges()) == 1


def test_sync_streaming_without_usage_still_bills_from_provider_usage(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    with client.chat.completions.with_streaming_response.create(
        model=MINI, messages=[{"role": "user", "content": "a b c"}], stream=True
    ) as response:
        assert response.headers["x-gateway-model"] == MINI
        chunks = list(response.parse())
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: a b c"
    # the gateway asked the upstream for usage although the client did not
    assert fake_openai.requests[-1]["json"]["stream_options"] == {"include_usage": True}
    assert gateway.balance() == START - mini_cost(fake_openai.responses[-1]["usage"])


def test_stream_chunks_are_raw_sse_ending_in_done(gateway: GatewayServer):
    body = {
        "model": MINI,
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {gateway.demo_key}"}
    with httpx.stream(
        "POST", f"{gateway.base_url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    final = json.loads(events[-2].removeprefix("data: "))
    assert final["choices"] == [] and "cost" in final["usage"]


def test_cached_prompt_tokens_are_billed_at_the_cached_price(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.cached_tokens = 8
    completion = client.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": "a b c d e f g h i j"}]
    )
    usage = fake_openai.responses[-1]["usage"]
    cost = mini_cost(usage, cached=8)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (13, 11)
    assert cost == 8745  # (5 x 0.15 + 8 x 0.075 + 11 x 0.60) x 1000 x 1.1
    assert completion.usage is not None and body_cost(completion.usage.model_extra) == usd_text(
        cost
    )
    assert gateway.balance() == START - cost
    assert gateway.charges()[0]["cache_read_tokens"] == 8


def test_fields_pass_through_and_the_model_name_is_mapped(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    gateway.execute(
        "UPDATE model_configurations SET upstream_model = 'upstream-mini' WHERE model_id = ?", MINI
    )
    assert httpx.post(
        f"{gateway.base_url}/admin/cache/refresh",
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    ).is_success
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = client.chat.completions.create(
        model=MINI,
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        response_format={"type": "text"},
        user="end-user-7",
        seed=42,
    )
    sent = fake_openai.requests[-1]["json"]
    assert sent["model"] == "upstream-mini"
    assert sent["tools"] == tools
    assert (sent["tool_choice"], sent["temperature"], sent["top_p"]) == ("auto", 0.2, 0.9)
    assert (sent["response_format"], sent["user"], sent["seed"]) == (
        {"type": "text"},
        "end-user-7",
        42,
    )
    assert completion.model == MINI


def test_tool_call_round_trip(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    first = client.chat.completions.create(
        model=MINI,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert first.choices[0].finish_reason == "tool_calls"
    fake_openai.tool_call = None
    second = client.chat.completions.create(
        model=MINI,
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    assert second.choices[0].message.content == "Echo: weather in Paris?"
    costs = [mini_cost(r["usage"]) for r in fake_openai.responses]
    assert gateway.balance() == START - sum(costs)
    assert len(gateway.charges()) == 2


def test_without_provider_usage_the_gateway_counts_tokens(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.omit_usage = True
    completion = client.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": "count me please"}]
    )
    enc = tiktoken.get_encoding("o200k_base")
    # 3 per message + 3 to prime the reply, as OpenAI counts chat prompts
    prompt = 3 + 3 + len(enc.encode("count me please"))
    completion_tokens = len(enc.encode("Echo: count me please"))
    cost = expected_cost_nano(prompt, completion_tokens, "0.15", "0.60")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        prompt,
        completion_tokens,
    )
    assert gateway.balance() == START - cost


def test_generate_endpoint(gateway: GatewayServer, fake_openai: FakeOpenAI):
    response = httpx.post(
        f"{gateway.base_url}/v1/generate",
        headers={"Authorization": gateway.demo_key},  # the bare form of the header
        json={"model": MINI, "prompt": "Hello, world!", "max_tokens": 100},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    usage = fake_openai.responses[-1]["usage"]
    cost = mini_cost(usage)
    assert body["text"] == "Echo: Hello, world!"
    assert body["model"] == MINI
    assert body_cost(body["usage"]) == usd_text(cost)
    assert {k: body["usage"][k] for k in usage} == usage
    assert body["cost_usd"] == usd_text(cost)
    assert body["balance_usd"] == usd_text(START - cost)
    assert fake_openai.requests[-1]["json"]["max_tokens"] == 100


def test_x_api_key_header_and_models_list(client: openai.OpenAI, gateway: GatewayServer):
    response = httpx.get(f"{gateway.base_url}/v1/models", headers={"x-api-key": gateway.demo_key})
    assert response.status_code == 200
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert (
        MINI in ids
        and "mock-1" in ids
        and ids[-4:] == ["auto", "auto:cheap", "auto:balanced", "auto:best"]
    )
    # Only OpenAI's credentials are set: the 17 OpenAI models, the three mock ones, the presets.
    assert len(ids) == 17 + 3 + 4 and "claude-3-opus-20240229" not in ids


@pytest.mark.parametrize("stream", [False, True])
def test_mock_provider_needs_no_credentials(make_gateway, stream: bool):
    gw = make_gateway(env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    with sync_client(gw) as client:
        text, usage = _ask_mock(client, stream)
    enc = tiktoken.get_encoding("o200k_base")
    assert text == "Hello from mock-1, the gateway's mock model. You said: Hi"
    assert usage is not None
    assert usage.completion_tokens == len(enc.encode(text))
    assert usage.prompt_tokens == 3 + 3 + len(enc.encode("Hi"))
    cost = expected_cost_nano(usage.prompt_tokens, usage.completion_tokens, "0.15", "0.60")
    assert body_cost(usage.model_extra) == usd_text(cost)
    assert gw.balance() == START - cost


def _ask_mock(client: openai.OpenAI, stream: bool) -> tuple[str, Any]:
    messages = [{"role": "user", "content": "Hi"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="mock-1",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        completion = client.chat.completions.create(model="mock-1", messages=messages)  # type: ignore[arg-type]
        text, usage = completion.choices[0].message.content or "", completion.usage
    return text, usage
