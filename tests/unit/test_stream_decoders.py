"""Each provider's stream decoder, fed recorded events with no I/O: what it
relays, the usage it keeps, and how it refuses what it cannot read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.pricing import Usage
from billing.settlement import Anomaly
from gateway.errors import GatewayError
from gateway.providers import anthropic, gemini, openai
from gateway.providers.base import ChatStream
from gateway.providers.sse import SSEDecoder
from gateway.providers.wire import Malformed


def fed(decoder: Any, events: list[Any]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        out += decoder.feed(event if isinstance(event, str) else json.dumps(event))
    return out


# Recorded from OpenAI's Chat Completions stream (ids shortened), with usage asked for.
OPENAI_EVENTS = [
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                  "logprobs": None, "finish_reason": None}], "usage": None},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
     "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": None,
                  "finish_reason": None}], "usage": None},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
     "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
     "usage": None},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
     "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10,
                              "prompt_tokens_details": {"cached_tokens": 0}}},
    "[DONE]",
]  # fmt: skip


def test_openai_relays_chunks_and_keeps_the_usage_chunk_for_itself():
    stream = ChatStream()
    decoder = openai.OpenAIStream("mini", stream)
    chunks = fed(decoder, OPENAI_EVENTS)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hi", None]
    assert all(c["model"] == "mini" for c in chunks)
    assert decoder.done and stream.usage_complete
    assert stream.usage == Usage(9, 1) and stream.text == ["Hi"]


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ("{oops", "expected"),
        ("[]", "a chunk is not an object"),
        (json.dumps({"choices": [{"index": 0, "delta": {"content": 1}}]}), "content"),
        (json.dumps({"choices": [{"index": "0", "delta": {}}]}), "index"),
        (json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": "x"}}]}), "tool_calls"),
        (json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
         "function": {"arguments": {}}}]}}]}), "arguments"),
    ],
)  # fmt: skip
def test_openai_refuses_what_it_cannot_read(event: str, said: str):
    decoder = openai.OpenAIStream("mini", ChatStream())
    with pytest.raises(ValueError, match=said):
        decoder.feed(event)


def test_openai_error_events_and_cut_streams_are_upstream_errors():
    decoder = openai.OpenAIStream("mini", ChatStream())
    with pytest.raises(GatewayError, match="slow down"):
        decoder.feed(json.dumps({"error": {"message": "slow down", "type": "server_error"}}))
    cut = openai.OpenAIStream("mini", ChatStream())
    fed(cut, OPENAI_EVENTS[:2])
    with pytest.raises(GatewayError, match="ended before"):
        cut.end()
    finished = openai.OpenAIStream("mini", ChatStream())
    fed(finished, OPENAI_EVENTS[:3])
    assert finished.end() == []  # finished, just no [DONE]


# Recorded from Anthropic's Messages stream (the event names are in each `type`).
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
     "model": "claude-3-5-haiku-20241022", "content": [], "stop_reason": None,
     "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
               "cache_read_input_tokens": 3000, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
     "id": "toolu_1", "name": "look", "input": {}}},
    {"type": "content_block_delta", "index": 1,
     "delta": {"type": "input_json_delta", "partial_json": "{\"x\": 1}"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 25}},
    {"type": "message_stop"},
]  # fmt: skip


def test_anthropic_keeps_message_start_usage_from_the_start_and_completes_it():
    stream = ChatStream()
    decoder = anthropic.AnthropicStream("haiku", stream)
    started = fed(decoder, ANTHROPIC_EVENTS[:4])
    assert stream.usage == Usage(3012, 1, cache_read_tokens=3000)
    assert not stream.usage_complete
    assert [c["choices"][0]["delta"] for c in started] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
    ]
    rest = fed(decoder, ANTHROPIC_EVENTS[4:])
    assert rest[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "look"
    assert rest[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.usage == Usage(3012, 25, cache_read_tokens=3000)
    assert stream.usage_complete and decoder.done
    assert stream.text == ["Hi", "look", '{"x": 1}']


def test_anthropic_usage_that_is_not_plausible_stays_an_anomaly():
    stream = ChatStream()
    decoder = anthropic.AnthropicStream("haiku", stream)
    start = json.loads(json.dumps(ANTHROPIC_EVENTS[0]))
    start["message"]["usage"]["input_tokens"] = -12
    fed(decoder, [start, ANTHROPIC_EVENTS[8]])
    assert isinstance(stream.usage, Anomaly) and '"input_tokens":-12' in stream.usage.raw


def test_anthropic_errors_and_cuts():
    decoder = anthropic.AnthropicStream("haiku", ChatStream())
    with pytest.raises(GatewayError, match="Overloaded"):
        fed(decoder, [{"type": "error", "error": {"type": "overloaded_error",
                                                   "message": "Overloaded"}}])  # fmt: skip
    cut = anthropic.AnthropicStream("haiku", ChatStream())
    fed(cut, ANTHROPIC_EVENTS[:4])
    with pytest.raises(GatewayError, match="ended before"):
        cut.end()
    wrong = anthropic.AnthropicStream("haiku", ChatStream())
    with pytest.raises(Malformed, match="index"):
        fed(wrong, [{"type": "content_block_delta", "index": "one", "delta": {}}])


# Recorded from Gemini's streamGenerateContent?alt=sse: usage grows chunk by chunk.
GEMINI_EVENTS = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1, "totalTokenCount": 9},
     "modelVersion": "gemini-2.0-flash", "responseId": "r1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2,
                       "thoughtsTokenCount": 5, "totalTokenCount": 15},
     "modelVersion": "gemini-2.0-flash", "responseId": "r1"},
]  # fmt: skip


def test_gemini_usage_grows_and_is_final_when_the_body_ends_finished():
    stream = ChatStream()
    decoder = gemini.GeminiStream("flash", stream)
    first = fed(decoder, GEMINI_EVENTS[:1])
    assert [c["choices"][0]["delta"] for c in first] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
    ]
    assert stream.usage == Usage(8, 1) and not stream.usage_complete
    fed(decoder, GEMINI_EVENTS[1:])
    last = decoder.end()
    assert last[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.usage == Usage(8, 7) and stream.usage_complete


def test_gemini_cut_before_any_candidate_finished():
    decoder = gemini.GeminiStream("flash", ChatStream())
    fed(decoder, GEMINI_EVENTS[:1])
    with pytest.raises(GatewayError, match="ended before"):
        decoder.end()


def test_gemini_several_candidates_each_become_a_choice():
    def candidate(n: int, said: str) -> dict[str, Any]:
        parts = [{"text": said}]
        return {"content": {"parts": parts}, "finishReason": "STOP", "index": n}

    payload = {
        "candidates": [candidate(0, "one"), candidate(1, "two")],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
    }
    result = gemini.parse_response(json.dumps(payload).encode(), "flash", "google")
    assert [c["message"]["content"] for c in result.body["choices"]] == ["one", "two"]
    assert [c["index"] for c in result.body["choices"]] == [0, 1]


@pytest.mark.parametrize(
    "usage",
    [
        {"promptTokenCount": 1e30},
        {"promptTokenCount": 5, "candidatesTokenCount": -1},
        {"promptTokenCount": 5, "cachedContentTokenCount": 6},
        {"candidatesTokenCount": 5},
    ],
)
def test_gemini_implausible_usage_is_an_anomaly(usage: dict[str, Any]):
    assert isinstance(gemini.parse_usage(usage), Anomaly)


def test_the_sse_decoder_refuses_bytes_that_are_not_utf8():
    with pytest.raises(UnicodeDecodeError):
        list(SSEDecoder().feed(b"data: \xff\n"))
