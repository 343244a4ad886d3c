"""Gemini behind the OpenAI API: the openai SDK -> gateway -> fake Gemini server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import openai
import pytest

from config_store.catalogue import DEMO_MODELS
from gateway.providers.base import ChatCall
from gateway.providers.gemini import build_body
from tests.fakes.gemini_upstream import FakeGemini
from tests.harness import GatewayServer, body_cost, expected_cost_nano, usd_text

FLASH = "gemini-2.0-flash"  # 0.10 in, 0.025 cached, 0.40 out
START = 100 * 10**9


def flash_cost(usage: dict[str, int]) -> int:
    out = usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    cached = usage["cachedContentTokenCount"]
    return expected_cost_nano(usage["promptTokenCount"], out, "0.10", "0.40", "10", cached, "0.025")


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def gemini(gemini_server: FakeGemini) -> FakeGemini:
    gemini_server.reset()
    return gemini_server


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayServer], gemini: FakeGemini) -> GatewayServer:
    return make_gateway(env={"GEMINI_BASE_URL": gemini.base_url, "GEMINI_API_KEY": gemini.api_key})


@pytest.fixture
def sdk(gw: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0) as c:
        yield c


def test_request_translation_is_pure():
    model = next(m for m in DEMO_MODELS if m.model_id == FLASH)
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
                    {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"x": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "a cat"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "max_tokens": 99,
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "response_format": {"type": "json_object"},
    }
    out = build_body(ChatCall(body, model, None, "http://x", "k", 99))  # type: ignore[arg-type]
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    assert out["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.test/cat.png"}},
    ]
    assert out["contents"][1]["parts"] == [{"functionCall": {"name": "look", "args": {"x": 1}}}]
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "look", "response": {"content": "a cat"}}}
    ]
    assert out["generationConfig"] == {
        "maxOutputTokens": 99,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
    }
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["look"]}
    }


def test_text_with_thoughts_and_cache_is_charged_exactly(sdk, gw, gemini: FakeGemini):
    gemini.thoughts, gemini.cached = 40, 3
    raw = sdk.chat.completions.with_raw_response.create(
        model=FLASH, messages=[{"role": "user", "content": "hello gemini friend"}]
    )
    completion = raw.parse()
    sent = gemini.requests[-1]
    assert sent["verb"] == "generateContent" and sent["model"] == FLASH
    assert gemini.api_key not in sent["url"]  # the key travels in a header only
    assert sent["headers"]["x-goog-api-key"] == gemini.api_key
    usage = gemini.responses[-1]["usage"]
    cost = flash_cost(usage)
    assert completion.choices[0].message.content == "Echo: hello gemini friend"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == usage["candidatesTokenCount"] + 40
    assert body_cost(completion.usage.model_extra) == usd_text(cost)
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    assert gw.balance() == START - cost


def test_streaming_with_usage(sdk, gw, gemini: FakeGemini):
    chunks = list(
        sdk.chat.completions.create(
            model=FLASH,
            messages=[{"role": "user", "content": "stream this please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert gemini.requests[-1]["verb"] == "streamGenerateContent"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream this please"
    cost = flash_cost(gemini.responses[-1]["usage"])
    assert chunks[-1].usage is not None
    assert body_cost(chunks[-1].usage.model_extra) == usd_text(cost)
    assert gw.balance() == START - cost


def test_tool_call_round_trip(sdk, gw, gemini: FakeGemini):
    gemini.function_call = {"name": "get_weather", "args": {"city": "Paris"}}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather?"}]
    first = sdk.chat.completions.create(model=FLASH, messages=messages, tools=tools)  # type: ignore[arg-type]
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    gemini.function_call = None
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = sdk.chat.completions.create(model=FLASH, messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "Echo: sunny"
    assert gw.balance() == START - sum(flash_cost(r["usage"]) for r in gemini.responses)


def test_image_and_blocked_prompt(sdk, gw, gemini: FakeGemini):
    gemini.block_prompt = True
    completion = sdk.chat.completions.create(
        model=FLASH,
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
    parts = gemini.requests[-1]["json"]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    assert gw.balance() == START - flash_cost(gemini.responses[-1]["usage"])


def test_upstream_failure_is_502_and_not_charged(sdk, gw, gemini: FakeGemini):
    gemini.fail_next = [(500, "internal")]
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert gw.balance() == START and gw.charges() == []
