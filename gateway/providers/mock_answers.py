"""What the mock provider answers, decided without I/O: the reply to a chat
request (text, JSON, or a tool call), cut at a stop sequence or the token
limit, and the pieces a stream sends it in.

Which answers: `n` choices, all alike but for their tool-call ids. A tool is
called when `tool_choice` is "required" or names a function, and, when it is
"auto" (or absent), when the request offers tools and its last message is the
user's, so that an agent loop ends once a tool's result comes back. The tool
called is the named one, else the first whose name the user's last message
mentions, else the first offered. One call per answer: `parallel_tool_calls`
is not read. Its arguments are an example of the tool's parameter schema
(`mock_content.example_of`); the legacy `functions` field is not read either.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gateway.errors import bad_request
from gateway.providers.mock_content import example_of

MAX_CHOICES = 128  # as the gateway holds for, and as OpenAI allows
MAX_PIECE = 24  # characters of one streamed piece of a long word or of JSON

Count = Callable[[str], int]  # tokens of a text under the model's tokenizer


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def as_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Answer:
    content: str | None
    finish: str  # "stop", "length" or "tool_calls"
    tool_calls: tuple[ToolCall, ...] = ()

    def texts(self) -> list[str]:
        """What the answer outputs, as the texts whose tokens are its usage."""
        texts = [self.content] if self.content else []
        for call in self.tool_calls:
            texts += [call.name, call.arguments]
        return texts


def said(text: str) -> str:
    """The user's words, on one line and at most 200 characters."""
    words = " ".join(text.split())
    return words[:200] + "..." if len(words) > 200 else words


def last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(p.get("text", ""))
                for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"
            )
    return ""


def choices_asked(body: Mapping[str, Any]) -> int:
    """`n`: 1 when absent; a 400 when it is not an integer from 1 to 128."""
    n = body.get("n")
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
        raise bad_request(f"'n' must be an integer from 1 to {MAX_CHOICES}.", param="n")
    return n


def stops_asked(body: Mapping[str, Any]) -> list[str]:
    """`stop`: a string or a list of strings; a 400 when it is anything else."""
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    raise bad_request("'stop' must be a string or an array of strings.", param="stop")


def cut_at_stop(text: str, stops: list[str]) -> str:
    """`text` up to (not including) the earliest stop sequence in it."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[: min(found)] if found else text


def cut_words(text: str, limit: int | None, count: Count) -> tuple[str, bool]:
    """The most whole words of `text` within `limit` tokens, and whether it was cut."""
    if limit is None or count(text) <= limit:
        return text, False
    kept: list[str] = []
    for word in text.split(" "):
        if count(" ".join([*kept, word])) > limit:
            break
        kept.append(word)
    return " ".join(kept), True


def cut_chars(text: str, limit: int, count: Count) -> tuple[str, bool]:
    """The longest start of `text` found within `limit` tokens (a search over
    its length: JSON has no words to cut at), and whether it was cut."""
    if count(text) <= limit:
        return text, False
    fits, over = 0, len(text)
    while over - fits > 1:
        middle = (fits + over) // 2
        if count(text[:middle]) <= limit:
            fits = middle
        else:
            over = middle
    return text[:fits], True


def pieces(text: str) -> list[str]:
    """`text` as a stream sends it: a word at a time with the spaces before it,
    long words (and JSON) in pieces of at most MAX_PIECE characters."""
    return re.findall(rf"\s*\S{{1,{MAX_PIECE}}}|\s+", text)


def chat_answers(
    body: Mapping[str, Any], model_id: str, limit: int | None, count: Count
) -> list[Answer]:
    """The answers to a chat request: `n` of them, alike but for tool-call ids."""
    n = choices_asked(body)
    tool = chosen_tool(body)
    if tool is None:
        return [_text_answer(body, model_id, limit, count)] * n
    answer = _tool_answer(tool, limit, count)
    return [
        replace(answer, tool_calls=tuple(replace(c, id=_call_id()) for c in answer.tool_calls))
        for _ in range(n)
    ]


def chosen_tool(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The function to call (see the module's docstring), or None to answer in text."""
    tools: list[Mapping[str, Any]] = [
        t["function"]
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        for function in tools:
            if function.get("name") == wanted:
                return function
        raise bad_request(
            f"'tool_choice' names the function {str(wanted)[:100]!r}, not one of 'tools'.",
            param="tool_choice",
        )
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if choice != "required" and not (isinstance(last, Mapping) and last.get("role") == "user"):
        return None
    text = last_user_text(messages)
    named = [f for f in tools if isinstance(f.get("name"), str) and f["name"] in text]
    return named[0] if named else tools[0]


def _text_answer(body: Mapping[str, Any], model_id: str, limit: int | None, count: Count) -> Answer:
    reply = f"Hello from {model_id}, the gateway's mock model. You said: "
    reply += said(last_user_text(body.get("messages")))
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping):
        response_format = {}
    kind = response_format.get("type")
    if kind == "json_schema":
        wrapper = response_format.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, Mapping) else None
        example = example_of(schema if schema is not None else {"type": "object"})
        return _json_answer(as_json(example), limit, count)
    if kind == "json_object":
        return _json_answer(as_json({"reply": reply}), limit, count)
    text = cut_at_stop(reply, stops_asked(body))
    text, cut = cut_words(text, limit, count)
    return Answer(text, "length" if cut else "stop")


def _json_answer(json: str, limit: int | None, count: Count) -> Answer:
    if limit is None:
        return Answer(json, "stop")
    text, cut = cut_chars(json, limit, count)
    return Answer(text, "length" if cut else "stop")


def _tool_answer(function: Mapping[str, Any], limit: int | None, count: Count) -> Answer:
    name = str(function.get("name") or "")
    example = example_of(function.get("parameters", {"type": "object"}))
    arguments = as_json(example if isinstance(example, dict) else {})
    if limit is None:
        return Answer(None, "tool_calls", (ToolCall(_call_id(), name, arguments),))
    room = limit - count(name)
    if room < 0:
        return Answer("", "length")  # cut before the function's name was out
    arguments, cut = cut_chars(arguments, room, count)
    return Answer(None, "length" if cut else "tool_calls", (ToolCall(_call_id(), name, arguments),))


def as_json(value: Any) -> str:
    """`value` as compact JSON; "{}" for a value JSON cannot hold (nested past
    what orjson writes: a schema's `const` may be deep)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return "{}"


def _call_id() -> str:
    return f"call_mock_{uuid.uuid4().hex[:24]}"
