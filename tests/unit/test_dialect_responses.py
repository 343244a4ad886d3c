"""The Responses API dialect, fed recorded requests and streams: the exact chat
request, and the exact typed events in OpenAI's order."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from billing.pricing import Usage
from billing.settlement import PROVIDER, Charge
from gateway.dialects.responses import settings, to_response
from gateway.dialects.responses_request import to_chat
from gateway.dialects.responses_stream import ResponsesFraming
from gateway.proxy.validation.responses import validate_responses
from tests.unit.dialect_payloads import MODEL, PRICES, REQUEST_ID, events, expected, load, play

REQUESTS = load("responses_requests.json")
STREAMS = ["stream_text", "stream_tools", "stream_length", "stream_cut", "stream_empty"]
BODY = {"model": MODEL, "input": "hi", "metadata": {"a": "b"}}


def framing() -> ResponsesFraming:
    return ResponsesFraming(
        request_id=REQUEST_ID, model=MODEL, created_at=1700000000, echoed=settings(BODY)
    )


@pytest.mark.parametrize("case", REQUESTS, ids=[c["name"] for c in REQUESTS])
def test_a_request_translates_to_the_exact_chat_body(case: dict[str, Any]):
    validate_responses(case["request"])  # the translation is only given valid requests
    assert to_chat(case["request"]) == case["chat"]


@pytest.mark.parametrize("stream", STREAMS)
def test_a_stream_translates_to_the_exact_bytes(stream: str):
    assert b"".join(play(framing(), stream)) == expected(f"{stream}.responses.sse")


def test_every_event_is_numbered_and_named_by_its_type():
    sent = events(b"".join(play(framing(), "stream_tools")))
    assert [data["sequence_number"] for _, data in sent] == list(range(len(sent)))
    assert all(data["type"] == name for name, data in sent)
    assert [name for name, _ in sent] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the text
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # the first call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",  # the second call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = sent[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert [item.get("arguments") for item in final["output"][1:]] == ['{"city":"Paris"}', "{}"]


def test_a_non_streamed_answer_is_the_same_response_as_the_stream_ends_with():
    chat = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "length",
            }
        ]
    }
    charge = Charge(Usage(12, 1), 2805, 0, PROVIDER)
    response = to_response(
        chat,
        request_id=REQUEST_ID,
        model=MODEL,
        created_at=1700000000,
        echoed=settings(BODY),
        charge=charge,
        prices=PRICES,
    )
    body = orjson.loads(orjson.dumps(response))
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["content"][0]["text"] == "Hello"
    assert body["metadata"] == {"a": "b"} and body["store"] is False
    assert body["usage"]["cost"] == 0.000002805
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
