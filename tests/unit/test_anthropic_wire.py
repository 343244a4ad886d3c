"""Anthropic's Messages wire format without a socket: recorded streams through
`AnthropicStream` (however the bytes were cut) and recorded answers through the parser."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from billing.pricing import Usage
from billing.settlement import Anomaly
from gateway.errors import GatewayError
from gateway.providers import anthropic
from gateway.providers.base import ChatStream, StreamDecoder
from gateway.providers.wire import Malformed
from tests.unit.recorded import CHUNK_SIZES, decode_stream, events_of, payload

CACHED = Usage(21 + 2048 + 1024, 1, cache_read_tokens=2048, cache_write_tokens=1024)


def decoder(stream: ChatStream) -> StreamDecoder:
    return anthropic.AnthropicStream("haiku", stream)


def chunk(answer_id: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": answer_id,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "haiku",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_a_text_stream_becomes_openai_chunks(size: int):
    chunks, stream = decode_stream("anthropic/messages_stream.sse", decoder, size)
    assert chunks == [
        chunk("msg_01Ux", {"role": "assistant", "content": ""}),
        chunk("msg_01Ux", {"content": "Paris is"}),
        chunk("msg_01Ux", {"content": " the capital"}),
        chunk("msg_01Ux", {"content": " of France (Île-de-France)."}),
        chunk("msg_01Ux", {}, "stop"),
    ]
    assert stream.usage == Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)
    assert stream.usage_complete
    assert stream.text == ["Paris is", " the capital", " of France (Île-de-France)."]


def test_the_input_figures_are_the_usage_from_message_start_on():
    stream = ChatStream()
    reader = anthropic.AnthropicStream("haiku", stream)
    events = events_of(payload("anthropic/messages_stream.sse"), 1)
    reader.feed(events[0])
    assert stream.usage == CACHED and not stream.usage_complete


@pytest.mark.parametrize("size", [1, 9, 1 << 20])
def test_a_tool_use_stream_becomes_tool_call_chunks(size: int):
    chunks, stream = decode_stream("anthropic/messages_stream_tool_use.sse", decoder, size)
    start = {"index": 0, "id": "toolu_01Ab", "type": "function"}
    assert chunks == [
        chunk("msg_01Tu", {"role": "assistant", "content": ""}),
        chunk("msg_01Tu", {"content": "Let me check."}),
        chunk("msg_01Tu", {"tool_calls": [{**start, "function": {"name": "get_weather",
                                                                  "arguments": ""}}]}),
        chunk("msg_01Tu", {"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
        chunk("msg_01Tu", {"tool_calls": [{"index": 0, "function": {"arguments":
                                                                    '{"city": "Pa'}}]}),
        chunk("msg_01Tu", {"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
        chunk("msg_01Tu", {}, "tool_calls"),
    ]  # fmt: skip
    assert stream.text == ["Let me check.", "get_weather", "", '{"city": "Pa', 'ris"}']
    assert stream.usage == Usage(380, 54) and stream.usage_complete


def test_thinking_blocks_are_neither_relayed_nor_counted():
    chunks, stream = decode_stream("anthropic/messages_stream_thinking.sse", decoder, 4)
    assert chunks == [
        chunk("msg_01Th", {"role": "assistant", "content": ""}),
        chunk("msg_01Th", {"content": "144"}),
        chunk("msg_01Th", {}, "stop"),
    ]
    assert stream.text == ["144"]
    assert stream.usage == Usage(40, 31) and stream.usage_complete


def test_an_answer_finished_but_without_message_stop_is_whole():
    chunks, stream = decode_stream("anthropic/messages_stream_no_message_stop.sse", decoder, 1)
    assert len(chunks) == 5 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.usage == Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)


def test_a_stream_without_message_delta_is_a_502_and_keeps_the_input_figures():
    stream = ChatStream()
    reader = anthropic.AnthropicStream("haiku", stream)
    for data in events_of(payload("anthropic/messages_stream_no_stop.sse"), 1):
        reader.feed(data)
    with pytest.raises(GatewayError) as caught:
        reader.end()
    assert (caught.value.status, caught.value.message) == (
        502,
        "The provider's stream ended before its answer was finished.",
    )
    assert stream.usage == CACHED and not stream.usage_complete
    assert stream.text == ["Paris is", " the capital", " of France (Île-de-France)."]


def test_wrong_typed_input_figures_stay_an_anomaly_to_the_end():
    chunks, stream = decode_stream("anthropic/messages_stream_bad_usage.sse", decoder, 2)
    assert len(chunks) == 5
    assert isinstance(stream.usage, Anomaly) and stream.usage_complete
    assert stream.usage.raw.startswith('{"input_tokens":"21",')


@pytest.mark.parametrize(
    "name",
    ["anthropic/messages_stream_cut_mid_event.sse", "anthropic/messages_stream_bad_json.sse"],
)
@pytest.mark.parametrize("size", [1, 1 << 20])
def test_data_that_is_not_json_is_refused(name: str, size: int):
    with pytest.raises(orjson.JSONDecodeError):
        decode_stream(name, decoder, size)


def test_an_error_event_mid_stream_is_the_providers_failure():
    with pytest.raises(GatewayError) as caught:
        decode_stream("anthropic/messages_stream_error.sse", decoder, 1)
    assert caught.value.message == "The provider failed mid-stream: Overloaded"
    assert (caught.value.status, caught.value.retryable) == (502, True)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"type": "message_start", "message": []}, "message_start.message is not an object"),
        ({"type": "message_start", "message": {"id": 7}}, "message_start.message.id is not a "
         "string"),
        ({"type": "content_block_delta", "index": -1, "delta": {}},
         "content_block_delta.index is not an index"),
        ({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
          "text": ["x"]}}, "text_delta.text is not a string"),
        ({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use",
          "id": "t", "name": "f", "input": "x"}}, "content_block_start.content_block.input is "
         "not an object"),
        ({"type": "message_delta", "delta": {"stop_reason": 1}},
         "message_delta.delta.stop_reason is not a string"),
    ],
)  # fmt: skip
def test_a_wrong_typed_field_is_named(event: dict[str, Any], named: str):
    with pytest.raises(Malformed) as caught:
        anthropic.AnthropicStream("haiku", ChatStream()).feed(orjson.dumps(event).decode())
    assert str(caught.value) == named


def test_unknown_event_types_are_ignored():
    reader = anthropic.AnthropicStream("haiku", ChatStream())
    assert reader.feed('{"type": "some_future_event", "x": 1}') == []
    assert not reader.done


# --- whole answers -------------------------------------------------------------------


def parsed(name: str) -> anthropic.ChatResult:
    return anthropic.parse_response(payload(name), "haiku", "anthropic")


def answer(answer_id: str, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": answer_id,
        "object": "chat.completion",
        "created": 0,
        "model": "haiku",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }


def test_a_text_answer_with_cache_figures():
    result = parsed("anthropic/messages.json")
    said = {"role": "assistant", "content": "Paris is the capital of France."}
    assert result.body == answer("msg_01Wh", said, "stop")
    assert result.usage == Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)


def test_a_tool_use_answer_becomes_tool_calls():
    result = parsed("anthropic/messages_tool_use.json")
    call = {
        "id": "toolu_01Ab",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    said = {"role": "assistant", "content": "Let me check.", "tool_calls": [call]}
    assert result.body == answer("msg_01Tw", said, "tool_calls")
    assert result.usage == Usage(380, 54)


def test_a_thinking_block_is_left_out_and_max_tokens_is_length():
    thinking = parsed("anthropic/messages_thinking.json")
    assert thinking.body == answer("msg_01Tk", {"role": "assistant", "content": "144"}, "stop")
    assert thinking.usage == Usage(40, 31)
    cut = parsed("anthropic/messages_max_tokens.json")
    assert cut.body["choices"][0]["finish_reason"] == "length"
    assert cut.usage == Usage(21, 2)


def test_a_negative_figure_is_an_anomaly():
    assert parsed("anthropic/messages_bad_usage.json").usage == Anomaly(
        '{"input_tokens":21,"output_tokens":-9}'
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("anthropic/messages_no_content.json", "The provider 'anthropic' sent a malformed "
         "answer: 'content' is missing."),
        ("anthropic/messages_wrong_type.json", "The provider 'anthropic' sent a malformed "
         "answer: content[0].input is not an object."),
        ("anthropic/error_529.json", "The provider 'anthropic' failed: Overloaded"),
    ],
)  # fmt: skip
def test_an_answer_that_cannot_be_read_is_a_502_that_says_why(name: str, message: str):
    with pytest.raises(GatewayError) as caught:
        parsed(name)
    assert (caught.value.status, caught.value.message) == (502, message)


@pytest.mark.parametrize(
    ("started", "raw", "expected"),
    [
        (CACHED, {"output_tokens": 9}, Usage(3093, 9, 2048, 1024)),
        (CACHED, {"input_tokens": 5, "output_tokens": 9}, Usage(5, 9)),
        (CACHED, {"output_tokens": "9"}, Anomaly('{"output_tokens":"9"}')),
        (None, {"output_tokens": 9}, Anomaly('{"output_tokens":9}')),
        (Anomaly("x"), {"output_tokens": 9}, Anomaly("x")),
    ],
)
def test_the_final_usage_completes_the_start(started: Any, raw: Any, expected: Any):
    assert anthropic.final_usage(started, raw) == expected
