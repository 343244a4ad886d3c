"""Every field of a client request that the gateway or a translator reads is
checked before it is used: a 400 naming the field's path, no provider called,
no balance moved. A request without a valid key is a 401 whatever its body.
Several cases are ones the fuzz test found answering 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from billing.tokens import TokenCounter
from gateway.dialects.anthropic_request import to_chat
from gateway.proxy.validation import validate_messages
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer

CLAUDE = "claude-3-5-haiku-20241022"
GEMINI = "gemini-2.0-flash"
MINI = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    every_provider_env: dict[str, str],
) -> Iterator[GatewayServer]:
    """One gateway for the module: every case here is refused, so none changes it."""
    data_dir = tmp_path_factory.mktemp("validation")
    with GatewayServer(data_dir, counter, every_provider_env) as server:
        yield server


def post(gw: GatewayServer, route: str, body: Any, key: str | None = "demo") -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {gw.demo_key if key == 'demo' else key}"
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return httpx.post(f"{gw.base_url}{route}", content=content, headers=headers, timeout=30)


def assert_refused(
    untouched: Callable[[], None],
    response: httpx.Response,
    param: str | None,
    code: str,
    status: int = 400,
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    # Anthropic's routes name the error by its status, as Anthropic does.
    anthropic = response.request.url.path.startswith("/v1/messages")
    kind = "authentication_error" if anthropic and status == 401 else "invalid_request_error"
    assert (error["type"], error["param"], error["code"]) == (kind, param, code)
    if param is not None:
        assert param in error["message"]
    untouched()


@pytest.fixture
def untouched(
    gw: GatewayServer, fake_openai_server: FakeOpenAI, upstreams: tuple[FakeAnthropic, FakeGemini]
) -> Callable[[], None]:
    """Asserts that nothing happened since the test began: no provider called,
    no balance moved, no ledger row written."""
    claude, gemini = upstreams

    def state() -> tuple[int, int, int]:
        calls = fake_openai_server.calls + len(claude.requests) + len(gemini.requests)
        return calls, gw.balance(), len(gw.charges())

    before = state()

    def check() -> None:
        assert state() == before, "a refused request reached a provider or moved money"

    return check


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": MINI,
        "messages": list(messages or [{"role": "user", "content": "hi"}]),
        **extra,
    }


def user(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        # Found by fuzzing (answered 500 before): tool_calls that are not an array.
        (chat(user(tool_calls=1)), "messages[0].tool_calls", "invalid_type"),
        # Found by fuzzing: a content part whose type is not a string.
        (chat(user([{"type": [], "text": "x"}])), "messages[0].content[0].type", "invalid_type"),
        (chat({"role": "robot", "content": "x"}), "messages[0].role", "invalid_value"),
        (chat(user(5)), "messages[0].content", "invalid_type"),
        (chat(user([{"type": "text", "text": 5}])), "messages[0].content[0].text", "invalid_type"),
        (chat(user([{"type": "text"}])), "messages[0].content[0].text", "missing"),
        (chat(user(["hi"])), "messages[0].content[0]", "invalid_type"),
        (
            chat(user([{"type": "image_url", "image_url": {"url": 5}}])),
            "messages[0].content[0].image_url",
            "invalid_type",
        ),
        (chat(user(name=5)), "messages[0].name", "invalid_type"),
        (
            chat({"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": None}]}),
            "messages[0].tool_calls[0].id",
            "missing",
        ),
        (
            chat({"role": "assistant", "tool_calls": [{**CALL, "type": "code"}]}),
            "messages[0].tool_calls[0].type",
            "invalid_value",
        ),
        (
            chat(
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {"a": 1}}}],
                }
            ),
            "messages[0].tool_calls[0].function.arguments",
            "invalid_type",
        ),
        (chat({"role": "tool", "content": "42"}), "messages[0].tool_call_id", "missing"),
        (chat(tools=5), "tools", "invalid_type"),
        (chat(tools=[{"function": {"name": "f"}}]), "tools[0].type", "missing"),
        (chat(tools=[{"type": "function", "function": {}}]), "tools[0].function.name", "missing"),
        (
            chat(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
            "tools[0].function.parameters",
            "invalid_type",
        ),
        (chat(tools=[TOOL], tool_choice="maybe"), "tool_choice", "invalid_value"),
        (
            chat(tools=[TOOL], tool_choice={"type": "function", "function": {}}),
            "tool_choice.function.name",
            "missing",
        ),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value"),
        (chat(stop=[1]), "stop[0]", "invalid_type"),
        (chat(n=0), "n", "invalid_value"),
        (chat(n=129), "n", "invalid_value"),
        (chat(n=1.5), "n", "invalid_type"),
        (chat(temperature=2.5), "temperature", "invalid_value"),
        (chat(temperature="0.5"), "temperature", "invalid_type"),
        (chat(top_p=-0.1), "top_p", "invalid_value"),
        (chat(response_format="json"), "response_format", "invalid_type"),
        (chat(response_format={"type": 5}), "response_format.type", "invalid_type"),
        (
            chat(response_format={"type": "json_schema", "json_schema": "x"}),
            "response_format.json_schema",
            "invalid_type",
        ),
        (chat(stream_options=5), "stream_options", "invalid_type"),
        (
            chat(stream_options={"include_usage": "yes"}),
            "stream_options.include_usage",
            "invalid_type",
        ),
        (chat(max_completion_tokens=-1), "max_completion_tokens", "invalid_value"),
    ],
)
def test_chat_fields_are_checked_before_use(gw, untouched, body, param, code):
    for model in (MINI, CLAUDE, GEMINI, "mock-1"):
        response = post(gw, "/v1/chat/completions", {**body, "model": model})
        assert_refused(untouched, response, param, code)


def test_tools_that_are_not_an_array_for_a_claude_model_are_400(gw, untouched):
    """Found by fuzzing: `"tools": 5` to a Claude model answered 500."""
    response = post(gw, "/v1/chat/completions", chat(model=CLAUDE, tools=5))
    assert_refused(untouched, response, "tools", "invalid_type")


def test_generate_checks_its_fields(gw, untouched):
    response = post(gw, "/v1/generate", {"model": "mock-1", "prompt": "hi", "max_tokens": "9"})
    assert_refused(untouched, response, "max_tokens", "invalid_type")
    response = post(gw, "/v1/generate", {"model": "mock-1", "prompt": ["hi"]})
    assert_refused(untouched, response, "prompt", "invalid_type")


def test_completions_and_embeddings_check_what_they_read(gw, untouched):
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream_options": [1]}
    assert_refused(untouched, post(gw, "/v1/completions", body), "stream_options", "invalid_type")
    body = {"model": "text-embedding-3-small", "input": [None]}
    assert_refused(untouched, post(gw, "/v1/embeddings", body), "input", "invalid_type")


OPENAI_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/generate")


@pytest.mark.parametrize("route", [*OPENAI_ROUTES, "/v1/messages"])
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"tools": "x"}'])
@pytest.mark.parametrize("key", [None, "gw-not-a-key"])
def test_without_a_valid_key_every_route_is_401_whatever_the_body(gw, untouched, route, body, key):
    response = post(gw, route, body, key=key)
    assert_refused(untouched, response, None, "invalid_api_key", status=401)


def message(content: Any = "hi", role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": content}


def anthropic(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": MINI,
        "max_tokens": 16,
        "messages": list(messages or [message()]),
        **extra,
    }


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        # Found by fuzzing (answered 500 before, even without a key):
        (anthropic(tools="x"), "tools", "invalid_type"),
        (anthropic(message(5)), "messages[0].content", "invalid_type"),
        (
            anthropic(message([{"type": "image", "source": "x"}])),
            "messages[0].content[0].source",
            "invalid_type",
        ),
        ({"model": MINI, "messages": [message()]}, "max_tokens", "missing"),
        (anthropic(max_tokens=0), "max_tokens", "invalid_value"),
        (anthropic(max_tokens="16"), "max_tokens", "invalid_type"),
        ({**anthropic(), "model": 5}, "model", "invalid_type"),
        ({**anthropic(), "messages": []}, "messages", "invalid_type"),
        (anthropic(message(role="system")), "messages[0].role", "invalid_value"),
        (
            anthropic(message([{"type": "document", "source": {}}])),
            "messages[0].content[0].type",
            "unsupported_block",
        ),
        (
            anthropic(message([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])),
            "messages[0].content[0].type",
            "unsupported_block",
        ),
        (
            anthropic(message([IMAGE], role="assistant")),
            "messages[0].content[0].type",
            "unsupported_block",
        ),
        (
            anthropic(message([{"type": "text", "text": None}])),
            "messages[0].content[0].text",
            "missing",
        ),
        (
            anthropic(message([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
            "messages[0].content[0].source.type",
            "invalid_value",
        ),
        (
            anthropic(
                message([{**IMAGE, "source": {"type": "base64", "media_type": "image/png"}}])
            ),
            "messages[0].content[0].source.data",
            "missing",
        ),
        (
            anthropic(
                message("hi"),
                message([{"type": "tool_use", "id": "t", "name": "f", "input": "x"}], "assistant"),
            ),
            "messages[1].content[0].input",
            "invalid_type",
        ),
        (
            anthropic(message([{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE]}])),
            "messages[0].content[0].content[0].type",
            "unsupported_block",
        ),
        (
            anthropic(message([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}])),
            "messages[0].content[0].is_error",
            "invalid_type",
        ),
        (anthropic(system=5), "system", "invalid_type"),
        (anthropic(system=[IMAGE]), "system[0].type", "unsupported_block"),
        (anthropic(tools=[{"name": "f"}]), "tools[0].input_schema", "missing"),
        (anthropic(tool_choice={"type": "maybe"}), "tool_choice.type", "invalid_value"),
        (anthropic(tool_choice={"type": "tool"}), "tool_choice.name", "missing"),
        (anthropic(stop_sequences="END"), "stop_sequences", "invalid_type"),
        (anthropic(temperature=1.5), "temperature", "invalid_value"),
        (anthropic(top_k=-1), "top_k", "invalid_value"),
        (anthropic(metadata="x"), "metadata", "invalid_type"),
        (anthropic(stream="yes"), "stream", "invalid_type"),
    ],
)
def test_messages_fields_are_checked_before_translation(gw, untouched, body, param, code):
    response = post(gw, "/v1/messages", body)
    assert_refused(untouched, response, param, code)
    assert post(gw, "/v1/messages", body, key=None).status_code == 401


@pytest.mark.parametrize("route", [*OPENAI_ROUTES, "/v1/messages"])
def test_a_body_nested_deeper_than_can_be_written_again_is_400(gw, untouched, route):
    """orjson reads 1024 levels but writes 254: such a body reached a provider's
    request builder (or the token counter) and answered 500."""
    deep = b"[" * 300 + b"]" * 300
    body = b'{"model": "%s", "x": %s}' % (MINI.encode(), deep)
    assert_refused(untouched, post(gw, route, body), None, "invalid_json")


def test_a_body_nested_as_deep_as_can_be_written_again_is_served(gw):
    fine = json.loads("[" * 200 + "]" * 200)
    response = post(gw, "/v1/chat/completions", chat(x=fine, max_tokens=5))
    assert response.status_code == 200, response.text


def test_unknown_fields_pass_through_to_the_provider_untouched(gw, fake_openai_server):
    extra = {"seed": 7, "logit_bias": {"15": -100}, "x_vendor": [{"any": None}], "user": "u-1"}
    response = post(gw, "/v1/chat/completions", chat(**extra, max_tokens=5))
    assert response.status_code == 200, response.text
    sent = fake_openai_server.requests[-1]["json"]
    assert {name: sent[name] for name in extra} == extra


def test_a_full_anthropic_conversation_is_translated(gw, fake_openai_server):
    body = anthropic(
        message([{"type": "text", "text": "What is it?"}, IMAGE]),
        message(
            [
                {"type": "thinking", "thinking": "Look it up.", "signature": "s"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": 1}},
            ],
            "assistant",
        ),
        message(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "a cat"}],
                },
                {"type": "text", "text": "Thanks."},
            ]
        ),
        system=[{"type": "text", "text": "Be brief."}],
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
        stop_sequences=["END"],
    )
    response = post(gw, "/v1/messages", body)
    assert response.status_code == 200, response.text
    sent = fake_openai_server.requests[-1]["json"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
        {"role": "user", "content": [{"type": "text", "text": "Thanks."}]},
    ]
    assert sent["tool_choice"] == "required"
    assert sent["stop"] == ["END"]
    assert sent["tools"][0]["function"]["name"] == "lookup"


@pytest.mark.parametrize(
    ("choice", "translated"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "lookup"}, {"type": "function", "function": {"name": "lookup"}}),
    ],
)
def test_tool_choice_is_translated(choice, translated):
    body = anthropic(tools=[{"name": "lookup", "input_schema": {}}], tool_choice=choice)
    validate_messages(body)
    assert to_chat(body)["tool_choice"] == translated


def test_tool_choice_without_tools_is_not_sent():
    body = anthropic(tool_choice={"type": "auto"})
    validate_messages(body)
    assert "tool_choice" not in to_chat(body)


def test_an_assistant_turn_of_thinking_only_keeps_a_text_content():
    body = anthropic(
        message("hi"),
        message([{"type": "redacted_thinking", "data": "x"}], "assistant"),
        message("go on"),
    )
    validate_messages(body)
    assert to_chat(body)["messages"][1] == {"role": "assistant", "content": ""}
