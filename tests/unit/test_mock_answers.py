"""What the mock answers, decided without I/O: which tool it calls and when,
stop sequences, cuts at the token limit, `n`, and the pieces of a stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.providers.mock_answers import (
    MAX_PIECE,
    chat_answers,
    choices_asked,
    chosen_tool,
    cut_at_stop,
    cut_chars,
    pieces,
    stops_asked,
)


def length(text: str) -> int:
    return len(text)  # a tokenizer of one token per character, to see the cuts exactly


def function(name: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"name": name, "parameters": schema}


WEATHER, TIME = function("get_weather"), function("get_time")
TOOLS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": TIME}]
ASKED = [{"role": "user", "content": "What time is it in Oslo?"}]
ANSWERED = [
    *ASKED,
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
    {"role": "tool", "tool_call_id": "c1", "content": "noon"},
]


@pytest.mark.parametrize(
    ("messages", "tool_choice", "expected"),
    [
        (ASKED, None, WEATHER),  # auto: the user spoke last, the first tool
        (ASKED, "auto", WEATHER),
        ([{"role": "user", "content": "call get_time please"}], None, TIME),  # named in the text
        (ANSWERED, None, None),  # a tool's result came back: answer in text
        (ANSWERED, "auto", None),
        (ANSWERED, "required", WEATHER),
        (ASKED, "none", None),
        (ANSWERED, {"type": "function", "function": {"name": "get_time"}}, TIME),
    ],
)
def test_when_and_which_tool_is_called(messages: Any, tool_choice: Any, expected: Any):
    body = {"messages": messages, "tools": TOOLS, "tool_choice": tool_choice}
    assert chosen_tool(body) == expected


def test_no_tools_no_call_and_an_unknown_named_tool_is_a_400():
    assert chosen_tool({"messages": ASKED, "tool_choice": "required"}) is None
    named = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(GatewayError) as caught:
        chosen_tool({"messages": ASKED, "tools": TOOLS, "tool_choice": named})
    assert (caught.value.status, caught.value.param) == (400, "tool_choice")


def test_n_answers_alike_but_for_their_call_ids():
    body = {"messages": ASKED, "tools": TOOLS, "n": 3}
    answers = chat_answers(body, "mock-1", None, length)
    assert [a.finish for a in answers] == ["tool_calls"] * 3
    calls = [a.tool_calls[0] for a in answers]
    assert {(c.name, c.arguments) for c in calls} == {("get_weather", '{"city":"city"}')}
    assert len({c.id for c in calls}) == 3
    assert answers[0].texts() == ["get_weather", '{"city":"city"}']


def test_a_tool_call_cut_at_the_limit_finishes_with_length():
    body = {"messages": ASKED, "tools": TOOLS}
    (answer,) = chat_answers(body, "mock-1", len("get_weather") + 5, length)
    assert (answer.finish, answer.tool_calls[0].arguments) == ("length", '{"cit')
    (answer,) = chat_answers(body, "mock-1", 3, length)  # not even the name fits
    assert (answer.content, answer.finish, answer.tool_calls) == ("", "length", ())


def test_text_is_cut_before_the_earliest_stop_then_at_the_limit():
    body = {"messages": [{"role": "user", "content": "hi"}], "stop": ["model", "mock"]}
    (answer,) = chat_answers(body, "mock-1", None, length)
    assert (answer.content, answer.finish) == ("Hello from ", "stop")
    (answer,) = chat_answers(body, "mock-1", 7, length)
    assert (answer.content, answer.finish) == ("Hello", "length")


def test_json_answers():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {
        "messages": ASKED,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    (answer,) = chat_answers(body, "mock-1", None, length)
    assert (answer.content, answer.finish) == ('{"n":0}', "stop")
    body["response_format"] = {"type": "json_object"}
    (answer,) = chat_answers(body, "mock-1", None, length)
    reply = "Hello from mock-1, the gateway's mock model. You said: What time is it in Oslo?"
    assert orjson.loads(answer.content or "") == {"reply": reply}
    (answer,) = chat_answers(body, "mock-1", 4, length)
    assert (answer.content, answer.finish) == ('{"re', "length")


def test_stop_and_cut_helpers():
    assert cut_at_stop("one two three", ["three", "two"]) == "one "
    assert cut_at_stop("one two", ["four"]) == "one two"
    assert cut_chars("abcdef", 3, length) == ("abc", True)
    assert cut_chars("abc", 3, length) == ("abc", False)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 0}, "n"),
        ({"n": "2"}, "n"),
        ({"n": True}, "n"),
        ({"n": 129}, "n"),
        ({"stop": 3}, "stop"),
    ],
)
def test_bad_n_or_stop_is_a_400(body: dict[str, Any], param: str):
    with pytest.raises(GatewayError) as caught:
        choices_asked(body)
        stops_asked(body)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_good_n_and_stop():
    assert (choices_asked({}), choices_asked({"n": 128})) == (1, 128)
    assert stops_asked({"stop": "x"}) == ["x"]
    assert stops_asked({"stop": ["", "y"]}) == ["y"]
    assert stops_asked({"stop": ""}) == []


@given(st.text())
def test_pieces_join_back_into_the_text(text: str):
    parts = pieces(text)
    assert "".join(parts) == text
    assert all(len(p.strip()) <= MAX_PIECE for p in parts)
