"""Each provider adapter end to end, without a socket: `RecordedUpstream` stands
where the aiohttp client stands and answers with recorded payloads. What the
adapter sends, what it returns, and the error each bad answer becomes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from billing.pricing import Usage
from config_store.schema import ModelConfig, Provider
from gateway.errors import GatewayError, upstream_error
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import ChatCall, ChatProvider, ChatStream, Chunk, Listed
from gateway.providers.gemini import GeminiProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.transport import Transport
from tests.unit.recorded import Answer, RecordedUpstream, payload

KEY = "sk-unit-0123456789abcdef"
CHAT = {"model": "mini", "messages": [{"role": "user", "content": "What is two plus two?"}]}


def call_for(kind: str, body: dict[str, Any] = CHAT, max_tokens: int | None = None) -> ChatCall:
    upstream_name = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}
    model = ModelConfig(
        id="1",
        model_id="mini",
        provider=kind,
        input_price_per_million=Decimal("0.15"),
        output_price_per_million=Decimal("0.60"),
        context_window_size=128_000,
        max_output_tokens=4096,
        upstream_model=upstream_name.get(kind, "gemini-2.0-flash"),
    )
    provider = Provider(id=f"{kind}-1", kind=kind)
    base_url = "https://openai.test/v1" if kind == "openai" else f"https://{kind}.test"
    return ChatCall(body, model, provider, base_url, KEY, max_tokens)


def as_transport(upstream: RecordedUpstream) -> Transport:
    return upstream  # the fake must keep matching the protocol (checked by mypy on this line)


async def drained(stream: ChatStream) -> list[Chunk]:
    return [chunk async for chunk in stream.chunks]


async def failure(awaitable: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await awaitable
    return caught.value


def relayed(name: str, count: int) -> list[dict[str, Any]]:
    events = [line[6:] for line in payload(name).split(b"\n") if line.startswith(b"data: {")]
    return [{**orjson.loads(e), "model": "mini"} for e in events[:count]]


# --- OpenAI --------------------------------------------------------------------------


async def test_openai_chat_sends_the_body_with_the_upstream_name_and_returns_the_answer():
    upstream = RecordedUpstream(Answer.of("openai/chat.json"))
    result = await OpenAIProvider(as_transport(upstream)).chat(call_for("openai"))
    assert result.body == {**orjson.loads(payload("openai/chat.json")), "model": "mini"}
    assert result.usage == Usage(2006, 6, cache_read_tokens=1920)
    [sent] = upstream.sent
    assert (sent.method, sent.url) == ("POST", "https://openai.test/v1/chat/completions")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.json() == {**CHAT, "model": "gpt-4o-mini"}


@pytest.mark.parametrize("size", [1, 13, 1 << 20])
async def test_openai_chat_stream_relays_the_chunks_and_closes_the_stream(size: int):
    upstream = RecordedUpstream(Answer.of("openai/chat_stream.sse"), chunk_size=size)
    stream = await OpenAIProvider(upstream).chat_stream(call_for("openai"))
    assert await drained(stream) == relayed("openai/chat_stream.sse", 5)
    assert stream.usage == Usage(2006, 6, cache_read_tokens=1920) and stream.usage_complete
    assert stream.text == ["Two", " plus two", " is four."]
    assert upstream.streams[0].closed
    sent = upstream.sent[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_openai_tool_call_and_two_choice_streams():
    upstream = RecordedUpstream(
        Answer.of("openai/chat_stream_tool_calls.sse"), Answer.of("openai/chat_stream_n2.sse")
    )
    adapter = OpenAIProvider(upstream)
    tools = await adapter.chat_stream(call_for("openai"))
    assert await drained(tools) == relayed("openai/chat_stream_tool_calls.sse", 7)
    assert tools.usage == Usage(81, 38)
    two = await adapter.chat_stream(call_for("openai", {**CHAT, "n": 2}))
    assert len(await drained(two)) == 8 and two.usage == Usage(11, 4)
    assert upstream.sent[1].json()["n"] == 2


async def test_openai_legacy_completions_whole_and_streamed():
    body = {"model": "mini", "prompt": "Once", "max_tokens": 7}
    upstream = RecordedUpstream(
        Answer.of("openai/completion.json"), Answer.of("openai/completion_stream.sse")
    )
    adapter = OpenAIProvider(upstream)
    whole = await adapter.text_completion(call_for("openai", body, 7))
    assert whole.body["choices"][0]["text"] == "\n\nOnce upon a time, a fox"
    assert whole.usage == Usage(5, 7)
    streamed = await adapter.text_completion_stream(call_for("openai", body, 7))
    chunks = await drained(streamed)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Once upon a time"
    assert streamed.usage == Usage(5, 7) and streamed.usage_complete
    assert [s.url for s in upstream.sent] == ["https://openai.test/v1/completions"] * 2


async def test_openai_embeddings():
    body = {"model": "mini", "input": ["two plus two", "four"]}
    upstream = RecordedUpstream(
        Answer.of("openai/embeddings.json"), Answer.of("openai/embeddings_no_data.json")
    )
    adapter = OpenAIProvider(upstream)
    result = await adapter.embed(call_for("openai", body))
    assert result.body == {**orjson.loads(payload("openai/embeddings.json")), "model": "mini"}
    assert upstream.sent[0].url == "https://openai.test/v1/embeddings"
    assert upstream.sent[0].json() == {**body, "model": "gpt-4o-mini"}
    refused = await failure(adapter.embed(call_for("openai", body)))
    assert (refused.status, refused.message) == (
        502,
        "The provider 'openai-1' answered without data.",
    )


async def test_openai_model_listing():
    upstream = RecordedUpstream(Answer.of("openai/models.json"))
    listed = await OpenAIProvider(upstream).list_models("https://openai.test/v1", KEY, "openai-1")
    assert listed == [Listed("gpt-4o-mini"), Listed("text-embedding-3-small", mode="embedding")]
    assert upstream.sent[0].method == "GET"
    assert upstream.sent[0].url == "https://openai.test/v1/models"


# --- errors, the same for every adapter ------------------------------------------------

ERRORS = [
    # (answer, status, message, retryable)
    ("openai/error_400.json", 400, 400, "The provider 'openai-1' refused the request: "
     "'messages' must contain at least one message.", False),
    ("openai/error_401.json", 401, 502, "The provider 'openai-1' rejected the gateway's "
     "credentials (HTTP 401).", True),
    ("openai/error_429.json", 429, 429, "The provider 'openai-1' is rate limiting: "
     "Rate limit reached for requests per minute.", True),
    ("openai/error_500.json", 500, 502, "The provider 'openai-1' failed (HTTP 500): "
     "The server failed to process the request.", True),
    ("anthropic/error_400.json", 400, 400, "The provider 'anthropic-1' refused the request: "
     "max_tokens: Field required", False),
    ("anthropic/error_429.json", 429, 429, "The provider 'anthropic-1' is rate limiting: "
     "Too many requests for this organization.", True),
    ("anthropic/error_529.json", 529, 502, "The provider 'anthropic-1' failed (HTTP 529): "
     "Overloaded", True),
    ("gemini/error_400.json", 400, 400, "The provider 'gemini-1' refused the request: "
     "API key not valid. Please pass a valid API key.", False),
    ("gemini/error_429.json", 429, 429, "The provider 'gemini-1' is rate limiting: "
     "Resource has been exhausted (e.g. check quota).", True),
    ("gemini/error_503.json", 503, 502, "The provider 'gemini-1' failed (HTTP 503): "
     "The model is overloaded. Please try again later.", True),
]  # fmt: skip

ADAPTERS: dict[str, Callable[[Transport], ChatProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(("name", "answered", "status", "message", "retryable"), ERRORS)
async def test_a_non_2xx_answer_is_the_error_the_client_sees(
    name: str, answered: int, status: int, message: str, retryable: bool, streamed: bool
):
    kind = name.split("/")[0]
    upstream = RecordedUpstream(Answer.of(name, answered, {"Retry-After": "3"}))
    adapter = ADAPTERS[kind](upstream)
    call = call_for(kind)
    error = await failure(adapter.chat_stream(call) if streamed else adapter.chat(call))
    assert (error.status, error.message, error.retryable) == (status, message, retryable)
    assert error.headers == ({"Retry-After": "3"} if status == 429 else {})
    assert upstream.streams == []


async def test_the_providers_key_never_reaches_an_error_message():
    leaked = orjson.dumps({"error": {"message": f"bad key {KEY} given"}})
    event = b"data: " + orjson.dumps({"error": {"message": f"key {KEY} revoked"}}) + b"\n\n"
    upstream = RecordedUpstream(Answer(leaked, 400), Answer(event))
    adapter = OpenAIProvider(upstream)
    refused = await failure(adapter.chat(call_for("openai")))
    assert (
        refused.message == "The provider 'openai-1' refused the request: bad key [redacted] given"
    )
    stream = await adapter.chat_stream(call_for("openai"))
    cut = await failure(drained(stream))
    assert cut.message == "The provider failed mid-stream: key [redacted] revoked"


async def test_a_failed_connection_passes_through():
    down = upstream_error("Could not connect to the provider 'openai-1'.")
    adapter = OpenAIProvider(RecordedUpstream(Answer(raises=down)))
    assert await failure(adapter.chat(call_for("openai"))) is down


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("openai/chat_truncated.json", "The provider 'openai-1' sent a malformed answer: "
         "it is not valid JSON."),
        ("openai/chat_no_choices.json", "The provider 'openai-1' sent a malformed answer: "
         "'choices' is missing."),
        ("anthropic/messages_wrong_type.json", "The provider 'anthropic-1' sent a malformed "
         "answer: content[0].input is not an object."),
        ("gemini/generate_wrong_type.json", "The provider 'gemini-1' sent a malformed answer: "
         "candidates[0].content.parts is not an array."),
        ("gemini/error_503.json", "The provider 'gemini-1' failed: The model is overloaded. "
         "Please try again later."),
    ],
)  # fmt: skip
async def test_a_2xx_answer_that_cannot_be_read_is_a_502(name: str, message: str):
    kind = name.split("/")[0]
    adapter = ADAPTERS[kind](RecordedUpstream(Answer.of(name)))
    error = await failure(adapter.chat(call_for(kind)))
    assert (error.status, error.code, error.message, error.retryable) == (
        502,
        "upstream_error",
        message,
        True,
    )


CUT = "The provider's stream ended before its answer was finished."
BROKEN_STREAMS = [
    ("openai/chat_stream_cut_mid_event.sse", 3, "The provider 'openai-1' sent a malformed "
     "stream: it is not valid JSON."),
    ("openai/chat_stream_bad_json.sse", 2, "The provider 'openai-1' sent a malformed stream: "
     "it is not valid JSON."),
    ("openai/chat_stream_wrong_type.sse", 2, "The provider 'openai-1' sent a malformed stream: "
     "choices[0].delta.content is not a string."),
    ("openai/chat_stream_no_finish.sse", 4, CUT),
    ("openai/chat_stream_error.sse", 3, "The provider failed mid-stream: The model is "
     "overloaded right now; please retry."),
    ("anthropic/messages_stream_cut_mid_event.sse", 3, "The provider 'anthropic-1' sent a "
     "malformed stream: it is not valid JSON."),
    ("anthropic/messages_stream_bad_json.sse", 2, "The provider 'anthropic-1' sent a "
     "malformed stream: it is not valid JSON."),
    ("anthropic/messages_stream_no_stop.sse", 4, CUT),
    ("anthropic/messages_stream_error.sse", 2, "The provider failed mid-stream: Overloaded"),
    ("gemini/stream_cut_mid_event.sse", 3, "The provider 'gemini-1' sent a malformed stream: "
     "it is not valid JSON."),
    ("gemini/stream_bad_json.sse", 2, "The provider 'gemini-1' sent a malformed stream: "
     "it is not valid JSON."),
    ("gemini/stream_wrong_type.sse", 2, "The provider 'gemini-1' sent a malformed stream: "
     "candidates[0].parts[0].text is not a string."),
    ("gemini/stream_no_finish.sse", 3, CUT),
    ("gemini/stream_error.sse", 2, "The provider failed mid-stream: The model is overloaded. "
     "Please try again later."),
]  # fmt: skip


@pytest.mark.parametrize("size", [1, 1 << 20])
@pytest.mark.parametrize(("name", "before", "message"), BROKEN_STREAMS)
async def test_a_broken_stream_relays_what_came_then_ends_with_a_502(
    name: str, before: int, message: str, size: int
):
    kind = name.split("/")[0]
    upstream = RecordedUpstream(Answer.of(name), chunk_size=size)
    stream = await ADAPTERS[kind](upstream).chat_stream(call_for(kind))
    relayed: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in stream.chunks:
            relayed.append(chunk)
    assert (caught.value.status, caught.value.message, caught.value.retryable) == (
        502,
        message,
        True,
    )
    assert len(relayed) == before
    assert upstream.streams[0].closed


# --- Anthropic -----------------------------------------------------------------------


async def test_anthropic_chat_translates_the_request_and_the_answer():
    body = {
        "model": "mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "temperature": 0.2,
        "stop": "\n\n",
    }
    upstream = RecordedUpstream(Answer.of("anthropic/messages.json"))
    result = await AnthropicProvider(upstream).chat(call_for("anthropic", body, 100))
    [sent] = upstream.sent
    assert sent.url == "https://anthropic.test/v1/messages"
    assert (sent.headers["x-api-key"], sent.headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert sent.json() == {
        "model": "claude-3-5-haiku-20241022",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}],
        "max_tokens": 100,
        "system": "Be brief.",
        "temperature": 0.2,
        "stop_sequences": ["\n\n"],
    }
    assert result.body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Paris is the capital of France.",
    }
    assert result.usage == Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)


@pytest.mark.parametrize("size", [1, 1 << 20])
async def test_anthropic_streams(size: int):
    upstream = RecordedUpstream(
        Answer.of("anthropic/messages_stream.sse"),
        Answer.of("anthropic/messages_stream_tool_use.sse"),
        Answer.of("anthropic/messages_stream_thinking.sse"),
        chunk_size=size,
    )
    adapter = AnthropicProvider(upstream)
    text = await adapter.chat_stream(call_for("anthropic"))
    said = [c["choices"][0]["delta"].get("content") for c in await drained(text)]
    assert said == ["", "Paris is", " the capital", " of France (Île-de-France).", None]
    assert text.usage == Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)
    tool = await adapter.chat_stream(call_for("anthropic"))
    chunks = await drained(tool)
    arguments = [
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in chunks[2:6]
    ]
    assert "".join(arguments) == '{"city": "Paris"}'
    assert tool.usage == Usage(380, 54)
    thinking = await adapter.chat_stream(call_for("anthropic"))
    assert len(await drained(thinking)) == 3 and thinking.usage == Usage(40, 31)
    assert upstream.sent[0].json()["stream"] is True
    assert all(s.closed for s in upstream.streams)


async def test_anthropic_model_listing_follows_the_pages():
    upstream = RecordedUpstream(
        Answer.of("anthropic/models_page1.json"), Answer.of("anthropic/models_page2.json")
    )
    listed = await AnthropicProvider(upstream).list_models("https://a.test", KEY, "anthropic-1")
    assert listed == [
        Listed("claude-3-5-sonnet-20241022", display_name="Claude 3.5 Sonnet (New)"),
        Listed("claude-3-5-haiku-20241022", display_name="Claude 3.5 Haiku"),
    ]
    assert [s.url for s in upstream.sent] == [
        "https://a.test/v1/models?limit=1000",
        "https://a.test/v1/models?limit=1000&after_id=claude-3-5-sonnet-20241022",
    ]


# --- Gemini --------------------------------------------------------------------------


async def test_gemini_chat_keeps_the_key_out_of_the_url():
    upstream = RecordedUpstream(Answer.of("gemini/generate.json"))
    result = await GeminiProvider(upstream).chat(call_for("gemini", max_tokens=50))
    [sent] = upstream.sent
    assert sent.url == "https://gemini.test/v1beta/models/gemini-2.0-flash:generateContent"
    assert KEY not in sent.url and sent.headers["x-goog-api-key"] == KEY
    assert sent.json() == {
        "contents": [{"role": "user", "parts": [{"text": "What is two plus two?"}]}],
        "generationConfig": {"maxOutputTokens": 50},
    }
    assert result.body["choices"][0]["message"]["content"] == (
        "The sky looks blue because air scatters short waves.\n"
    )
    assert result.usage == Usage(9, 32, cache_read_tokens=4)


@pytest.mark.parametrize("size", [1, 1 << 20])
async def test_gemini_streams(size: int):
    upstream = RecordedUpstream(
        Answer.of("gemini/stream.sse"),
        Answer.of("gemini/stream_function_call.sse"),
        chunk_size=size,
    )
    adapter = GeminiProvider(upstream)
    text = await adapter.chat_stream(call_for("gemini"))
    chunks = await drained(text)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == (
        "The sky looks blue because air scatters short waves.\n"
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert text.usage == Usage(9, 32, cache_read_tokens=4) and text.usage_complete
    assert upstream.sent[0].url.endswith(":streamGenerateContent?alt=sse")
    called = await adapter.chat_stream(call_for("gemini"))
    assert (await drained(called))[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert called.usage == Usage(52, 6)


async def test_gemini_model_listing_follows_the_pages():
    upstream = RecordedUpstream(
        Answer.of("gemini/models_page1.json"), Answer.of("gemini/models_page2.json")
    )
    listed = await GeminiProvider(upstream).list_models("https://g.test", KEY, "gemini-1")
    assert listed == [
        Listed("gemini-2.0-flash", "Gemini 2.0 Flash", 1048576, 8192, "chat"),
        Listed("text-embedding-004", "Text Embedding 004", 2048, 1, "embedding"),
    ]
    assert [s.url for s in upstream.sent] == [
        "https://g.test/v1beta/models?pageSize=1000",
        "https://g.test/v1beta/models?pageSize=1000&pageToken=page-2-token",
    ]
    assert all(KEY not in s.url for s in upstream.sent)
