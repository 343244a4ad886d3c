"""The Anthropic dialect, fed recorded payloads: a Messages request as the
internal chat request, an internal answer as a message, and an internal stream
as Anthropic's typed events, byte for byte."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from billing.pricing import Usage
from billing.settlement import PROVIDER, Charge
from gateway.dialects.anthropic import stop_reason, to_message, usage_of
from gateway.dialects.anthropic_request import to_chat
from gateway.dialects.anthropic_stream import AnthropicFraming
from gateway.errors import upstream_error
from gateway.proxy.validation import validate_messages
from tests.unit.dialect_payloads import MODEL, PRICES, REQUEST_ID, events, expected, load, play

REQUESTS = load("anthropic_requests.json")
ANSWERS = load("anthropic_answers.json")
STREAMS = ["stream_text", "stream_tools", "stream_length", "stream_cut", "stream_empty"]


# stream_tools' usage (30 prompt tokens, 16 of them cache reads, 25 output) at PRICES.
DETAILS = {
    "input": 0.0000021,
    "cached_input": 0.0000012,
    "cache_write": 0,
    "output": 0.000015,
    "markup": 0.00000183,
    "price_point": PRICES.point,
}


def framing() -> AnthropicFraming:
    return AnthropicFraming(request_id=REQUEST_ID, model=MODEL, input_tokens=12)


@pytest.mark.parametrize("case", REQUESTS, ids=[c["name"] for c in REQUESTS])
def test_a_request_translates_to_the_exact_chat_body(case: dict[str, Any]):
    validate_messages(case["request"])  # the translation is only given valid requests
    assert to_chat(case["request"]) == case["chat"]


def test_translating_a_request_leaves_it_as_it_was():
    request = REQUESTS[0]["request"]
    before = orjson.dumps(request)
    to_chat(request)
    assert orjson.dumps(request) == before


@pytest.mark.parametrize("case", ANSWERS, ids=[c["name"] for c in ANSWERS])
def test_an_answer_translates_to_the_exact_message(case: dict[str, Any]):
    message = to_message(
        case["chat"],
        request_id=REQUEST_ID,
        model=MODEL,
        charge=Charge(Usage(**case["usage"]), case["cost_nano"], 0, PROVIDER),
        prices=PRICES,
    )
    # The cost is a JSON number with exactly the fixture's digits; how it was made
    # (`cost_details`) is tested with the cost fields.
    expected_message = case["message"]
    assert orjson.dumps(message["usage"].pop("cost")).decode() == expected_message["usage"].pop(
        "cost"
    )
    assert message["usage"].pop("cost_details")["price_point"] == PRICES.point
    # Compared as bytes: the fixture's key order is the order on the wire.
    assert orjson.dumps(message) == orjson.dumps(expected_message)


@pytest.mark.parametrize("stream", STREAMS)
def test_a_stream_translates_to_the_exact_bytes(stream: str):
    assert b"".join(play(framing(), stream)) == expected(f"{stream}.anthropic.sse")


def test_tool_calls_stream_as_tool_use_blocks_with_input_json_deltas():
    sent = events(b"".join(play(framing(), "stream_tools")))
    assert [name for name, _ in sent] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in sent)
    blocks = [data["content_block"] for name, data in sent if name == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "tool_use"]
    arguments: dict[int, str] = {}
    for name, data in sent:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            arguments[data["index"]] = (
                arguments.get(data["index"], "") + data["delta"]["partial_json"]
            )
    assert {i: orjson.loads(a) for i, a in arguments.items()} == {1: {"city": "Paris"}, 2: {}}
    assert sent[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 25, "cost": 0.000001234, "cost_details": DETAILS},
    }


def test_each_chunk_returns_only_its_own_events():
    steps = [[name for name, _ in events(raw)] for raw in play(framing(), "stream_text")]
    assert steps == [
        ["message_start"],  # an empty first delta opens no block
        ["content_block_start", "content_block_delta"],
        ["content_block_delta"],
        [],  # the finish reason waits for the end, which knows the usage
        [],  # the provider's usage chunk is not relayed
        ["content_block_stop", "message_delta", "message_stop"],
    ]


def test_a_cut_stream_ends_with_an_error_event_and_no_stop():
    sent = events(b"".join(play(framing(), "stream_cut")))
    assert [name for name, _ in sent][-3:] == [
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    assert sent[-1][1] == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The provider's stream ended before it was complete.",
            "code": "upstream_error",
            "param": None,
        },
        "request_id": REQUEST_ID,
    }


def test_a_failure_before_any_chunk_is_an_error_event_alone():
    sent = events(framing().failed(upstream_error("No answer.")))
    error = {"type": "api_error", "message": "No answer.", "code": "upstream_error", "param": None}
    assert sent == [("error", {"type": "error", "error": error, "request_id": REQUEST_ID})]


def test_a_stream_error_has_the_shape_of_an_answered_error():
    refusal = upstream_error("The provider did not answer in time.", 504, "upstream_timeout")
    [(name, data)] = events(framing().failed(refusal))
    assert name == "error"
    assert data == refusal.anthropic_body(REQUEST_ID)
    assert data["error"]["type"] == "timeout_error"


@pytest.mark.parametrize(
    ("finish_reason", "expected_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("function_call", "end_turn"),
        (None, "end_turn"),
        (7, "end_turn"),
    ],
)
def test_stop_reasons(finish_reason: Any, expected_reason: str):
    assert stop_reason(finish_reason) == expected_reason


def test_usage_counts_cached_prompt_tokens_apart_and_carries_the_cost():
    usage = Usage(
        prompt_tokens=2000, completion_tokens=7, cache_read_tokens=1500, cache_write_tokens=300
    )
    body = orjson.dumps(usage_of(Charge(usage, 123_456_789_012, 0, PROVIDER), PRICES))
    assert orjson.loads(body) == {
        "input_tokens": 200,
        "output_tokens": 7,
        "cache_read_input_tokens": 1500,
        "cache_creation_input_tokens": 300,
        "cost": 123.456789012,
        "cost_details": {
            "input": 0.00003,  # 200 x 0.15 / 1M
            "cached_input": 0.0001125,  # 1500 x 0.075 / 1M
            "cache_write": 0.000045,  # 300 x 0.15 / 1M
            "output": 0.0000042,  # 7 x 0.60 / 1M
            "markup": 0.00001917,  # 10 % of their sum
            "price_point": PRICES.point,
        },
    }
    assert b'"cost":123.456789012,' in body
