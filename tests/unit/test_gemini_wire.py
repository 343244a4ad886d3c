"""Gemini's wire format without a socket: recorded `streamGenerateContent?alt=sse`
bodies through `GeminiStream` (however the bytes were cut) and recorded
`generateContent` answers through the parser."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from billing.pricing import Usage
from billing.settlement import Anomaly
from gateway.errors import GatewayError
from gateway.providers import gemini
from gateway.providers.base import ChatStream, StreamDecoder
from gateway.providers.wire import Malformed
from tests.unit.recorded import CHUNK_SIZES, decode_stream, events_of, payload


def decoder(stream: ChatStream) -> StreamDecoder:
    return gemini.GeminiStream("flash", stream)


def chunk(delta: dict[str, Any], finish: str | None = None, at: int = 0) -> dict[str, Any]:
    return {
        "id": "",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "flash",
        "choices": [{"index": at, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


ROLE = chunk({"role": "assistant", "content": ""})


def named(chunks: list[Any], answer_id: str) -> list[Any]:
    """`chunks`, once each is checked to carry the answer's id, without it."""
    assert [c["id"] for c in chunks] == [answer_id] * len(chunks)
    return [{**c, "id": ""} for c in chunks]


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_a_text_stream_becomes_openai_chunks_and_its_last_usage_is_final(size: int):
    chunks, stream = decode_stream("gemini/stream.sse", decoder, size)
    assert named(chunks, "r-Gm1") == [
        ROLE,
        chunk({"content": "The sky"}),
        chunk({"content": " looks blue because air"}),
        chunk({"content": " scatters short waves.\n"}),
        chunk({}, "stop"),
    ]
    # Thinking tokens are output, as Google bills them.
    assert stream.usage == Usage(9, 12 + 20, cache_read_tokens=4)
    assert stream.usage_complete
    assert stream.text == ["The sky", " looks blue because air", " scatters short waves.\n"]


def test_usage_grows_chunk_by_chunk():
    stream = ChatStream()
    reader = gemini.GeminiStream("flash", stream)
    events = events_of(payload("gemini/stream.sse"), 1)
    reader.feed(events[0])
    assert stream.usage == Usage(9, 0) and not stream.usage_complete
    reader.feed(events[1])
    reader.feed(events[2])
    assert stream.usage == Usage(9, 32, cache_read_tokens=4) and not stream.usage_complete


def test_a_function_call_is_relayed_whole():
    chunks, stream = decode_stream("gemini/stream_function_call.sse", decoder, 5)
    call = {
        "index": 0,
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    assert named(chunks, "r-Gm1") == [ROLE, chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]
    assert stream.text == ["get_weather", '{"city":"Paris"}']
    assert stream.usage == Usage(52, 6) and stream.usage_complete


def test_two_candidates_become_two_choices_each_with_its_finish():
    chunks, stream = decode_stream("gemini/stream_two_candidates.sse", decoder, 3)
    assert named(chunks, "r-Gm4") == [
        ROLE,
        chunk({"content": "Heads"}, at=0),
        chunk({"content": "Tails"}, at=1),
        chunk({"content": "!"}, at=0),
        chunk({"content": "."}, at=1),
        chunk({}, "stop", at=0),
        chunk({}, "length", at=1),
    ]
    assert stream.usage == Usage(6, 4) and stream.text == ["Heads", "Tails", "!", "."]


def test_a_body_that_ends_before_a_finish_reason_is_a_502_keeping_the_usage_so_far():
    stream = ChatStream()
    reader = gemini.GeminiStream("flash", stream)
    for data in events_of(payload("gemini/stream_no_finish.sse"), 1):
        reader.feed(data)
    with pytest.raises(GatewayError) as caught:
        reader.end()
    assert (caught.value.status, caught.value.message) == (
        502,
        "The provider's stream ended before its answer was finished.",
    )
    assert stream.usage == Usage(9, 0) and not stream.usage_complete


def test_a_wrong_typed_usage_figure_is_an_anomaly():
    chunks, stream = decode_stream("gemini/stream_bad_usage.sse", decoder, 7)
    assert len(chunks) == 5
    assert stream.usage == Anomaly(
        '{"promptTokenCount":9,"candidatesTokenCount":"12","totalTokenCount":21}'
    )
    assert stream.usage_complete


@pytest.mark.parametrize("name", ["gemini/stream_cut_mid_event.sse", "gemini/stream_bad_json.sse"])
@pytest.mark.parametrize("size", [1, 1 << 20])
def test_data_that_is_not_json_is_refused(name: str, size: int):
    with pytest.raises(orjson.JSONDecodeError):
        decode_stream(name, decoder, size)


def test_a_wrong_typed_part_is_named():
    with pytest.raises(Malformed) as caught:
        decode_stream("gemini/stream_wrong_type.sse", decoder, 1)
    assert str(caught.value) == "candidates[0].parts[0].text is not a string"


def test_an_error_object_mid_stream_is_the_providers_failure():
    with pytest.raises(GatewayError) as caught:
        decode_stream("gemini/stream_error.sse", decoder, 2)
    assert caught.value.message == (
        "The provider failed mid-stream: The model is overloaded. Please try again later."
    )
    assert (caught.value.status, caught.value.retryable) == (502, True)


def test_a_blocked_prompt_ends_with_content_filter():
    reader = gemini.GeminiStream("flash", ChatStream())
    sent = reader.feed('{"promptFeedback": {"blockReason": "SAFETY"}}') + reader.end()
    # No chunk named the answer: it has an id of the gateway's, the same on every chunk.
    assert sent[0]["id"].startswith("chatcmpl-gemini-")
    assert named(sent, sent[0]["id"]) == [ROLE, chunk({}, "content_filter")]


# --- whole answers -------------------------------------------------------------------


def parsed(name: str) -> gemini.ChatResult:
    return gemini.parse_response(payload(name), "flash", "google")


def answer(answer_id: str, *choices: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": answer_id,
        "object": "chat.completion",
        "created": 0,
        "model": "flash",
        "choices": list(choices),
    }


def choice(message: dict[str, Any], finish: str, at: int = 0) -> dict[str, Any]:
    return {"index": at, "message": message, "finish_reason": finish, "logprobs": None}


def test_a_text_answer_leaves_thoughts_out_but_bills_them():
    result = parsed("gemini/generate.json")
    said = {
        "role": "assistant",
        "content": "The sky looks blue because air scatters short waves.\n",
    }
    assert result.body == answer("r-Gm2", choice(said, "stop"))
    assert result.usage == Usage(9, 32, cache_read_tokens=4)


def test_function_calls_are_numbered_tool_calls():
    result = parsed("gemini/generate_function_call.json")
    calls = [
        {"id": "call_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_1", "type": "function",
         "function": {"name": "get_time", "arguments": '{"tz":"CET"}'}},
    ]  # fmt: skip
    said = {"role": "assistant", "content": "", "tool_calls": calls}
    assert result.body == answer("r-Gm2", choice(said, "tool_calls"))
    assert result.usage == Usage(52, 12)


def test_a_blocked_prompt_and_a_cut_answer():
    blocked = parsed("gemini/generate_blocked.json")
    empty = {"role": "assistant", "content": ""}
    assert blocked.body == answer("r-Gm3", choice(empty, "content_filter"))
    assert blocked.usage == Usage(8, 0)
    cut = parsed("gemini/generate_max_tokens.json")
    assert cut.body["choices"] == [choice({"role": "assistant", "content": "The sky"}, "length")]
    assert cut.usage == Usage(9, 2)


def test_more_cached_than_prompt_tokens_is_an_anomaly():
    assert parsed("gemini/generate_bad_usage.json").usage == Anomaly(
        '{"promptTokenCount":9,"candidatesTokenCount":12,"cachedContentTokenCount":10}'
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gemini/generate_wrong_type.json", "The provider 'google' sent a malformed answer: "
         "candidates[0].content.parts is not an array."),
        ("gemini/error_503.json", "The provider 'google' failed: The model is overloaded. "
         "Please try again later."),
    ],
)  # fmt: skip
def test_an_answer_that_cannot_be_read_is_a_502_that_says_why(name: str, message: str):
    with pytest.raises(GatewayError) as caught:
        parsed(name)
    assert (caught.value.status, caught.value.message) == (502, message)
