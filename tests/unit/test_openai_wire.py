"""OpenAI's wire format without a socket: recorded streams through `OpenAIStream`
(however the bytes were cut) and recorded answers through the parsers."""

from __future__ import annotations

import json

import orjson
import pytest

from billing.pricing import Usage
from billing.settlement import Anomaly
from gateway.errors import GatewayError
from gateway.providers import openai
from gateway.providers.base import ChatStream, StreamDecoder
from gateway.providers.wire import Malformed
from tests.unit.recorded import CHUNK_SIZES, decode_stream, events_of, payload


def decoder(stream: ChatStream) -> StreamDecoder:
    return openai.OpenAIStream("mini", stream)


def relayed_as(name: str, count: int) -> list[dict[str, object]]:
    """The first `count` events of a recorded stream as the gateway relays them."""
    events = events_of(payload(name), 1 << 20)[:count]
    return [{**json.loads(e), "model": "mini"} for e in events]


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_a_plain_stream_is_relayed_whole_and_its_usage_chunk_kept(size: int):
    chunks, stream = decode_stream("openai/chat_stream.sse", decoder, size)
    assert chunks == relayed_as("openai/chat_stream.sse", 5)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == [
        "",
        "Two",
        " plus two",
        " is four.",
        None,
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.usage == Usage(2006, 6, cache_read_tokens=1920)
    assert stream.usage_complete
    assert stream.text == ["Two", " plus two", " is four."]


@pytest.mark.parametrize("size", [1, 5, 1 << 20])
def test_streamed_tool_calls_are_relayed_and_their_names_and_arguments_counted(size: int):
    chunks, stream = decode_stream("openai/chat_stream_tool_calls.sse", decoder, size)
    assert chunks == relayed_as("openai/chat_stream_tool_calls.sse", 7)
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    assert [call[0]["index"] for call in calls[:6]] == [0, 0, 0, 0, 1, 1]
    assert calls[0][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.text == ["get_weather", '{"ci', 'ty": "Par', 'is"}', "get_time", '{"tz": "CET"}']
    assert stream.usage == Usage(81, 38) and stream.usage_complete


def test_two_choices_are_relayed_interleaved_and_billed_once():
    chunks, stream = decode_stream("openai/chat_stream_n2.sse", decoder, 3)
    assert [c["choices"][0]["index"] for c in chunks] == [0, 1, 0, 1, 1, 0, 1, 0]
    assert stream.text == ["Heads", "Tails", ".", "!"]
    assert stream.usage == Usage(11, 4) and stream.usage_complete


def test_a_legacy_completion_stream_counts_its_text():
    chunks, stream = decode_stream("openai/completion_stream.sse", decoder, 2)
    assert [c["choices"][0]["text"] for c in chunks] == ["Once", " upon", " a time", ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["object"] == "text_completion" and c["model"] == "mini" for c in chunks)
    assert stream.text == ["Once", " upon", " a time"]
    assert stream.usage == Usage(5, 7) and stream.usage_complete


def test_a_finished_stream_without_its_usage_chunk_ends_without_usage():
    chunks, stream = decode_stream("openai/chat_stream_no_usage.sse", decoder, 1)
    assert len(chunks) == 5 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.usage is None and not stream.usage_complete
    assert stream.text == ["Two", " plus two", " is four."]


def test_usage_with_a_wrong_typed_figure_is_kept_as_an_anomaly():
    chunks, stream = decode_stream("openai/chat_stream_bad_usage.sse", decoder, 7)
    assert len(chunks) == 5
    assert isinstance(stream.usage, Anomaly) and stream.usage_complete
    assert stream.usage.raw.startswith('{"prompt_tokens":"2006","completion_tokens":6,')


def test_a_stream_that_ends_before_any_choice_finished_is_a_502():
    with pytest.raises(GatewayError) as caught:
        decode_stream("openai/chat_stream_no_finish.sse", decoder, 1)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        502,
        "upstream_error",
        "The provider's stream ended before its answer was finished.",
    )
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("openai/chat_stream_cut_mid_event.sse", orjson.JSONDecodeError),
        ("openai/chat_stream_bad_json.sse", orjson.JSONDecodeError),
        ("openai/chat_stream_wrong_type.sse", Malformed),
    ],
)
@pytest.mark.parametrize("size", [1, 1 << 20])
def test_what_cannot_be_read_is_refused(name: str, refused: type[Exception], size: int):
    with pytest.raises(refused):
        decode_stream(name, decoder, size)


def test_the_wrong_typed_field_is_named():
    with pytest.raises(Malformed, match=r"^choices\[0\]\.delta\.content is not a string$"):
        decode_stream("openai/chat_stream_wrong_type.sse", decoder, 1)


def test_an_error_event_mid_stream_is_the_providers_failure():
    seen: list[dict[str, object]] = []
    stream = ChatStream()
    reader = openai.OpenAIStream("mini", stream)
    events = events_of(payload("openai/chat_stream_error.sse"), 1)
    with pytest.raises(GatewayError) as caught:
        for data in events:
            seen += reader.feed(data)
    assert caught.value.message == (
        "The provider failed mid-stream: The model is overloaded right now; please retry."
    )
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert len(seen) == 3 and stream.text == ["Two", " plus two"]


# --- whole answers -------------------------------------------------------------------


def parsed(name: str) -> openai.ChatResult:
    return openai.parse_response(payload(name), "mini", "openai")


def test_a_chat_answer_keeps_its_body_but_the_model_name():
    result = parsed("openai/chat.json")
    assert result.body == {**json.loads(payload("openai/chat.json")), "model": "mini"}
    assert result.usage == Usage(2006, 6, cache_read_tokens=1920)


def test_tool_calls_two_choices_and_a_legacy_completion_are_read():
    tools = parsed("openai/chat_tool_calls.json")
    calls = tools.body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Paris"}', '{"tz": "CET"}']
    assert tools.usage == Usage(81, 38)
    two = parsed("openai/chat_n2.json")
    assert [c["message"]["content"] for c in two.body["choices"]] == ["Heads!", "Tails."]
    assert two.usage == Usage(11, 4)
    legacy = parsed("openai/completion.json")
    assert legacy.body["choices"][0]["text"] == "\n\nOnce upon a time, a fox"
    assert legacy.usage == Usage(5, 7)


def test_an_answer_without_usage_or_with_bad_usage():
    assert parsed("openai/chat_no_usage.json").usage is None
    assert parsed("openai/chat_bad_usage.json").usage == Anomaly(
        '{"prompt_tokens":14,"completion_tokens":6.5,"total_tokens":20.5}'
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("openai/chat_no_choices.json", "The provider 'openai' sent a malformed answer: "
         "'choices' is missing."),
        ("openai/chat_wrong_type.json", "The provider 'openai' sent a malformed answer: "
         "choices[0].message.content is not a string."),
        ("openai/chat_truncated.json", "The provider 'openai' sent a malformed answer: "
         "it is not valid JSON."),
        ("openai/chat_error_in_200.json", "The provider 'openai' failed: "
         "Internal failure while generating."),
    ],
)  # fmt: skip
def test_an_answer_that_cannot_be_read_is_a_502_that_says_why(name: str, message: str):
    with pytest.raises(GatewayError) as caught:
        parsed(name)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        502,
        "upstream_error",
        message,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ({"prompt_tokens": 3, "completion_tokens": 4}, Usage(3, 4)),
        (
            {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": None},
            Usage(3, 4),
        ),
        ({"prompt_tokens": 3, "completion_tokens": True}, Anomaly('{"prompt_tokens":3,'
         '"completion_tokens":true}')),
        ({"prompt_tokens": 3, "completion_tokens": 0,
          "prompt_tokens_details": {"cached_tokens": 4}}, Anomaly('{"prompt_tokens":3,'
         '"completion_tokens":0,"prompt_tokens_details":{"cached_tokens":4}}')),
        ({"prompt_tokens": 3, "completion_tokens": 0, "prompt_tokens_details": []},
         Anomaly('{"prompt_tokens":3,"completion_tokens":0,"prompt_tokens_details":[]}')),
        ("12", Anomaly('"12"')),
    ],
)  # fmt: skip
def test_usage_figures(raw: object, expected: object):
    assert openai.parse_usage(raw) == expected


def test_embeddings_usage_without_completion_tokens_is_the_providers_count():
    usage = json.loads(payload("openai/embeddings.json"))["usage"]
    assert openai.parse_usage(usage, output=False) == Usage(9, 0)
    assert isinstance(openai.parse_usage(usage), Anomaly)  # a chat answer must report output
