"""The Responses dialect, fed recorded payloads: a Responses request checked
and translated to the internal chat request, an internal answer as a response
object, and an internal stream as the Responses typed events, byte for byte;
every answer and event read back with the openai SDK's own models."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from billing.pricing import Usage
from billing.settlement import PROVIDER, Charge
from gateway.dialects.responses import to_response
from gateway.dialects.responses_request import echoed, to_chat
from gateway.dialects.responses_stream import ResponsesFraming
from gateway.errors import GatewayError, upstream_error
from gateway.proxy.validation.responses import validate_responses
from tests.unit.dialect_payloads import MODEL, PRICES, REQUEST_ID, events, expected, load, play

REQUESTS = load("responses_requests.json")
ANSWERS = load("responses_answers.json")
STREAMS = ["stream_text", "stream_tools", "stream_length", "stream_cut", "stream_empty"]
CREATED_AT = 1700000000
# The request the recorded answers were made for: its settings are echoed.
ANSWERED = {
    "model": MODEL,
    "input": "x",
    "instructions": "Be brief.",
    "max_output_tokens": 64,
    "metadata": {"team": "blue"},
}
EVENT = TypeAdapter(ResponseStreamEvent)


def framing(request: dict[str, Any] | None = None) -> ResponsesFraming:
    echo = echoed(request or {"model": MODEL, "input": "x"})
    return ResponsesFraming(request_id=REQUEST_ID, model=MODEL, created_at=CREATED_AT, echo=echo)


@pytest.mark.parametrize("case", REQUESTS, ids=[c["name"] for c in REQUESTS])
def test_a_request_translates_to_the_exact_chat_body(case: dict[str, Any]):
    validate_responses(case["request"])  # the translation is only given valid requests
    assert to_chat(case["request"]) == case["chat"]


def test_translating_a_request_leaves_it_as_it_was():
    request = REQUESTS[1]["request"]
    before = orjson.dumps(request)
    to_chat(request)
    echoed(request)
    assert orjson.dumps(request) == before


def test_a_response_repeats_the_settings_asked_for_and_the_defaults_of_the_rest():
    assert echoed({"model": MODEL, "input": "x"}) == {
        "instructions": None,
        "max_output_tokens": None,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "user": None,
        "metadata": {},
    }
    request = REQUESTS[0]["request"]
    echo = echoed(request)
    assert echo["store"] is False  # whatever was asked: nothing is kept
    assert echo["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert (echo["temperature"], echo["top_p"], echo["user"]) == (0.3, 0.9, "u-1")
    assert echo["reasoning"] == {"effort": "low", "summary": "auto"}
    tools = REQUESTS[1]["request"]
    assert echoed(tools)["tools"] == tools["tools"]
    assert echoed(tools)["tool_choice"] == {"type": "function", "name": "weather"}
    assert echoed(tools)["parallel_tool_calls"] is False


@pytest.mark.parametrize("case", ANSWERS, ids=[c["name"] for c in ANSWERS])
def test_an_answer_translates_to_the_exact_response(case: dict[str, Any]):
    response = to_response(
        case["chat"],
        request_id=REQUEST_ID,
        model=MODEL,
        created_at=CREATED_AT,
        echo=echoed(ANSWERED),
        charge=Charge(Usage(**case["usage"]), case["cost_nano"], 0, PROVIDER),
        prices=PRICES,
    )
    Response.model_validate(orjson.loads(orjson.dumps(response)), strict=True)
    # The cost is a JSON number with exactly the fixture's digits; how it was made
    # (`cost_details`) is tested with the cost fields.
    expected_response = case["response"]
    assert orjson.dumps(response["usage"].pop("cost")).decode() == expected_response["usage"].pop(
        "cost"
    )
    assert response["usage"].pop("cost_details")["price_point"] == PRICES.point
    # Compared as bytes: the fixture's key order is the order on the wire.
    assert orjson.dumps(response) == orjson.dumps(expected_response)


@pytest.mark.parametrize("stream", STREAMS)
def test_a_stream_translates_to_the_exact_bytes(stream: str):
    assert b"".join(play(framing(), stream)) == expected(f"{stream}.responses.sse")


@pytest.mark.parametrize("stream", STREAMS)
def test_every_event_is_numbered_in_order_and_reads_as_the_sdks_own(stream: str):
    sent = events(b"".join(play(framing(), stream)))
    assert [data["sequence_number"] for _, data in sent] == list(range(len(sent)))
    for name, data in sent:
        assert data["type"] == name
        EVENT.validate_python(data)


def test_tool_calls_stream_as_function_call_items_with_argument_deltas():
    sent = events(b"".join(play(framing(), "stream_tools")))
    assert [name for name, _ in sent] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = [data["item"] for name, data in sent if name == "response.output_item.done"]
    assert [(i["type"], i["id"], i["status"]) for i in done] == [
        ("message", "msg_req_1", "completed"),
        ("function_call", "fc_req_1_0", "completed"),
        ("function_call", "fc_req_1_1", "completed"),
    ]
    assert [(i.get("call_id"), i.get("arguments")) for i in done[1:]] == [
        ("call_a", '{"city":"Paris"}'),
        ("call_b", "{}"),
    ]
    final = sent[-1][1]["response"]
    assert final["status"] == "completed" and final["output"] == done
    assert final["usage"]["input_tokens_details"] == {"cached_tokens": 16, "cache_write_tokens": 0}
    assert (final["usage"]["output_tokens"], final["usage"]["cost"]) == (25, 0.000001234)


def test_each_chunk_returns_only_its_own_events():
    steps = [[name for name, _ in events(raw)] for raw in play(framing(), "stream_text")]
    assert steps == [
        ["response.created", "response.in_progress"],  # an empty first delta opens nothing
        [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ],
        ["response.output_text.delta"],
        [],  # the finish reason waits for the end, which knows the usage
        [],  # the provider's usage chunk is not relayed
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
    ]


def test_a_stream_cut_at_max_output_tokens_ends_incomplete():
    sent = events(b"".join(play(framing(), "stream_length")))
    name, data = sent[-1]
    assert name == "response.incomplete"
    assert data["response"]["status"] == "incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["output"][0]["status"] == "incomplete"
    assert data["response"]["output"][0]["content"][0]["text"] == "It was a dark"


def test_a_cut_stream_ends_with_an_error_event_the_sdk_raises():
    sent = events(b"".join(play(framing(), "stream_cut")))
    assert [name for name, _ in sent][-3:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "error",
    ]
    message = "The provider's stream ended before it was complete."
    assert sent[-1][1] == {
        "type": "error",
        "code": "upstream_error",
        "message": message,
        "param": None,
        # The openai SDK raises an event that carries an `error` object.
        "error": {
            "message": message,
            "type": "upstream_error",
            "param": None,
            "code": "upstream_error",
        },
        "request_id": REQUEST_ID,
        "sequence_number": 10,
    }


def test_a_failure_before_any_chunk_is_an_error_event_alone():
    sent = events(framing().failed(upstream_error("No answer.")))
    assert [(name, data["message"], data["sequence_number"]) for name, data in sent] == [
        ("error", "No answer.", 0)
    ]


def test_a_streamed_refusal_is_a_refusal_part():
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "refusal": "I can't"}}]},
        {"choices": [{"index": 0, "delta": {"refusal": " help."}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]},
    ]
    frames = framing()
    raw = b"".join(frames.chunk(chunk) for chunk in chunks)
    raw += frames.end(Charge(Usage(5, 4), 9, 0, PROVIDER), PRICES)
    sent = events(raw)
    assert [name for name, _ in sent][2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    for _, data in sent:
        EVENT.validate_python(data)
    final = sent[-1][1]["response"]
    assert final["incomplete_details"] == {"reason": "content_filter"}
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_text_after_a_tool_call_opens_a_message_of_its_own():
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "First."}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_z",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"content": "Then."}}]},
    ]
    frames = framing()
    raw = b"".join(frames.chunk(chunk) for chunk in chunks)
    raw += frames.end(Charge(Usage(5, 4), 9, 0, PROVIDER), PRICES)
    final = events(raw)[-1][1]["response"]
    assert [(item["type"], item["id"]) for item in final["output"]] == [
        ("message", "msg_req_1"),
        ("function_call", "fc_req_1_0"),
        ("message", "msg_req_1_1"),
    ]


BASE = {"model": MODEL, "input": "hi"}
FUNCTION = {"type": "function", "name": "f"}
REFUSED = [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
    ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
    ({"background": True}, "background", "unsupported_parameter"),
    ({"store": True}, "store", "unsupported_parameter"),
    ({"store": "no"}, "store", "invalid_type"),
    ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_parameter"),
    ({"model": ""}, "model", "invalid_type"),
    ({"input": None}, "input", "invalid_type"),
    ({"input": []}, "input", "invalid_type"),
    ({"input": 5}, "input", "invalid_type"),
    ({"input": ["hi"]}, "input[0]", "invalid_type"),
    (
        {"input": [{"type": "item_reference", "id": "msg_1"}]},
        "input[0].type",
        "unsupported_parameter",
    ),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "invalid_value"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "invalid_value"),
    ({"input": [{"role": "user"}]}, "input[0].content", "invalid_type"),
    ({"input": [{"role": "user", "content": "x", "id": 7}]}, "input[0].id", "invalid_type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        "input[0].content[0].file_id",
        "unsupported_parameter",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        "input[0].content[0].image_url",
        "missing",
    ),
    (
        {
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": "u", "detail": "max"}],
                }
            ]
        },
        "input[0].content[0].detail",
        "invalid_value",
    ),
    (
        {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]},
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        "input[0].content[0].text",
        "missing",
    ),
    (
        {"input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
        "input[0].arguments",
        "missing",
    ),
    (
        {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
        "input[0].arguments",
        "invalid_type",
    ),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]},
        "input[0].output",
        "invalid_type",
    ),
    (
        {
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_image", "image_url": "u"}],
                }
            ]
        },
        "input[0].output[0].type",
        "invalid_value",
    ),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", "missing"),
    (
        {"input": [{"type": "function_call_output", "call_id": "call_x", "output": "x"}]},
        "input[0].call_id",
        "invalid_value",
    ),
    ({"input": [{"role": "user", "content": []}]}, "input[0].content", "invalid_type"),
    ({"tools": "f"}, "tools", "invalid_type"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "invalid_value"),
    ({"tools": [{"type": "function"}]}, "tools[0].name", "missing"),
    ({"tools": [{**FUNCTION, "parameters": "x"}]}, "tools[0].parameters", "invalid_type"),
    ({"tools": [{**FUNCTION, "strict": "yes"}]}, "tools[0].strict", "invalid_type"),
    ({"tool_choice": "any"}, "tool_choice", "invalid_value"),
    (
        {"tools": [FUNCTION], "tool_choice": {"type": "function", "name": "g"}},
        "tool_choice.name",
        "invalid_value",
    ),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type", "invalid_value"),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type"),
    ({"max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
    ({"max_output_tokens": 1.5}, "max_output_tokens", "invalid_type"),
    ({"temperature": 3}, "temperature", "invalid_value"),
    ({"top_p": "1"}, "top_p", "invalid_type"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type", "invalid_value"),
    ({"text": {"verbosity": "loud"}}, "text.verbosity", "invalid_value"),
    (
        {"text": {"format": {"type": "json_schema", "schema": {}}}},
        "text.format.name",
        "missing",
    ),
    (
        {"text": {"format": {"type": "json_schema", "name": "a b", "schema": {}}}},
        "text.format.name",
        "invalid_value",
    ),
    ({"text": {"format": {"type": "json_schema", "name": "a"}}}, "text.format.schema", "missing"),
    ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
    ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata", "invalid_value"),
    ({"metadata": {"k" * 65: "v"}}, "metadata", "invalid_value"),
    ({"stream": "true"}, "stream", "invalid_type"),
    ({"reasoning": {"effort": "max"}}, "reasoning.effort", "invalid_value"),
    ({"include": "x"}, "include", "invalid_type"),
    ({"truncation": "sometimes"}, "truncation", "invalid_value"),
    (
        {"stream_options": {"include_obfuscation": 1}},
        "stream_options.include_obfuscation",
        "invalid_type",
    ),
    ({"instructions": 5}, "instructions", "invalid_type"),
    ({"user": 5}, "user", "invalid_type"),
]


@pytest.mark.parametrize(("fields", "param", "code"), REFUSED, ids=[r[1] for r in REFUSED])
def test_a_request_the_gateway_cannot_serve_is_a_400_naming_the_field(
    fields: dict[str, Any], param: str, code: str
):
    with pytest.raises(GatewayError) as refused:
        validate_responses({**BASE, **fields})
    error = refused.value
    assert (error.status, error.param, error.code) == (400, param, code), error.message
    assert param.split(".")[0].split("[")[0] in error.message


@pytest.mark.parametrize("field", ["previous_response_id", "conversation", "store", "background"])
def test_what_needs_a_stored_response_says_the_gateway_keeps_none(field: str):
    value: Any = True if field in ("store", "background") else "resp_1"
    with pytest.raises(GatewayError) as refused:
        validate_responses({**BASE, field: value})
    assert "does not keep responses" in refused.value.message


def test_store_false_and_every_setting_left_unset_are_taken():
    validate_responses({**BASE, "store": False, "background": False})
    validate_responses({**BASE, **{name: None for name in ("store", "tools", "text", "user")}})
