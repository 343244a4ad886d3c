"""Anthropic's surface through the anthropic SDK (strict response validation):
count_tokens, and errors in Anthropic's shape, typed by the SDK, with
`request-id` as well as `x-request-id`."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, o200k
from tests.raw_http import connect, head, read_answer

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9
HI = [{"role": "user", "content": "Hi"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def gw(module_gateway: GatewayServer) -> GatewayServer:
    return module_gateway


def sdk(gw: GatewayServer, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.base_url,
        api_key=key or gw.demo_key,
        max_retries=0,
        _strict_response_validation=True,
    )


def new_key(gw: GatewayServer, **fields: Any) -> str:
    response = httpx.post(
        f"{gw.base_url}/admin/users/demo/keys",
        headers={"Authorization": f"Bearer {gw.admin_key}"},
        json={"name": "t", **fields},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def anthropic_error(error: anthropic.APIStatusError, kind: str, code: str | None) -> str:
    """The body is Anthropic's shape, naming the id both headers carry; returns the message."""
    response = error.response
    body = response.json()
    assert list(body) == ["type", "error", "request_id"]
    assert body["type"] == "error"
    assert (body["error"]["type"], body["error"]["code"]) == (kind, code)
    assert body["request_id"] == response.headers["request-id"] == response.headers["x-request-id"]
    assert error.request_id == body["request_id"]  # what the SDK reads
    return str(body["error"]["message"])


def test_count_tokens_is_the_gateways_count_and_costs_nothing(
    gw: GatewayServer, fake_openai_server: FakeOpenAI
):
    calls, balance, rows = fake_openai_server.calls, gw.balance(), len(gw.charges())
    with sdk(gw) as client:
        simple = client.messages.count_tokens(model=MINI, messages=HI)  # type: ignore[arg-type]
        full = client.messages.count_tokens(
            model=MINI,
            system="Be brief.",
            messages=HI,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "auto"},
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
        # The streamed message's start carries the gateway's count of the same prompt.
        with client.messages.stream(
            model=MINI,
            max_tokens=5,
            system="Be brief.",
            messages=HI,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "auto"},
        ) as stream:
            started = next(e for e in stream if e.type == "message_start")
            stream.until_done()
    assert simple.input_tokens == 3 + 3 + len(o200k().encode("Hi"))  # as the chat prompt counts
    assert full.input_tokens == started.message.usage.input_tokens > simple.input_tokens
    assert fake_openai_server.calls == calls + 1  # only the streamed message
    assert len(gw.charges()) == rows + 1 and gw.balance() < balance


def test_count_tokens_refusals(gw: GatewayServer):
    with sdk(gw) as client:
        with pytest.raises(anthropic.NotFoundError) as unknown:
            client.messages.count_tokens(model="no-such-model", messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError) as routed:
            client.messages.count_tokens(model="auto", messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError) as empty:
            client.messages.count_tokens(model=MINI, messages=[])
    anthropic_error(unknown.value, "not_found_error", "model_not_found")
    assert "tokenizer" in anthropic_error(
        routed.value, "invalid_request_error", "unsupported_model"
    )
    anthropic_error(empty.value, "invalid_request_error", "invalid_type")
    limited = sdk(gw, new_key(gw, allowed_models=["mock-1"]))
    with limited as client, pytest.raises(anthropic.PermissionDeniedError) as denied:
        client.messages.count_tokens(model=MINI, messages=HI)  # type: ignore[arg-type]
    anthropic_error(denied.value, "permission_error", "model_not_allowed")


def test_count_tokens_counts_against_the_keys_requests_per_minute(gw: GatewayServer):
    with sdk(gw, new_key(gw, rpm=1)) as client:
        assert client.messages.count_tokens(model=MINI, messages=HI).input_tokens > 0  # type: ignore[arg-type]
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.count_tokens(model=MINI, messages=HI)  # type: ignore[arg-type]
    anthropic_error(limited.value, "rate_limit_error", "rate_limit_exceeded")
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_messages_errors_are_anthropic_shaped_and_typed(
    gw: GatewayServer, fake_openai_server: FakeOpenAI
):
    calls = fake_openai_server.calls
    ask: dict[str, Any] = {"model": MINI, "max_tokens": 5, "messages": HI}
    with sdk(gw, "gw-not-a-key") as client, pytest.raises(anthropic.AuthenticationError) as bad:
        client.messages.create(**ask)
    anthropic_error(bad.value, "authentication_error", "invalid_api_key")
    with sdk(gw) as client:
        with pytest.raises(anthropic.NotFoundError) as unknown:
            client.messages.create(**{**ask, "model": "no-such-model"})
        with pytest.raises(anthropic.BadRequestError) as invalid:
            client.messages.create(**{**ask, "messages": [{"role": "system", "content": "x"}]})
    anthropic_error(unknown.value, "not_found_error", "model_not_found")
    anthropic_error(invalid.value, "invalid_request_error", "invalid_value")
    limited = sdk(gw, new_key(gw, allowed_models=["mock-1"]))
    with limited as client, pytest.raises(anthropic.PermissionDeniedError) as denied:
        client.messages.create(**ask)
    anthropic_error(denied.value, "permission_error", "model_not_allowed")
    broke = sdk(gw, gw.add_user("broke", 0))
    with broke as client, pytest.raises(anthropic.APIStatusError) as unpaid:
        client.messages.create(**ask)
    assert unpaid.value.status_code == 402
    assert "Insufficient balance" in anthropic_error(
        unpaid.value, "billing_error", "insufficient_quota"
    )
    assert fake_openai_server.calls == calls and gw.balance("broke") == 0


def test_the_anthropic_routes_answer_other_methods_and_sizes_in_their_shape(gw: GatewayServer):
    wrong_method = httpx.get(f"{gw.base_url}/v1/messages")
    assert wrong_method.status_code == 405
    body = wrong_method.json()
    assert (body["type"], body["error"]["type"]) == ("error", "invalid_request_error")
    assert body["request_id"] == wrong_method.headers["request-id"]
    with connect(gw) as sock:
        headers = {"x-api-key": gw.demo_key, "Content-Length": str(1 << 30)}
        sock.sendall(head("POST", "/v1/messages/count_tokens", headers))
        too_large = read_answer(sock)
    assert too_large.status == 413 and too_large.error_code() == "request_too_large"
    assert json.loads(too_large.body)["error"]["type"] == "request_too_large"
    assert too_large.headers["request-id"] == too_large.headers["x-request-id"]


def test_a_message_names_its_request_id_as_anthropic_does(gw: GatewayServer):
    with sdk(gw) as client:
        raw = client.messages.with_raw_response.create(model=MINI, max_tokens=5, messages=HI)  # type: ignore[arg-type]
        message = raw.parse()
        with client.messages.stream(model=MINI, max_tokens=5, messages=HI) as stream:  # type: ignore[arg-type]
            streamed = stream.get_final_message()
            stream_id = stream.response.headers["request-id"]
    request_id = raw.headers["request-id"]
    assert request_id == raw.headers["x-request-id"] == message._request_id
    assert message.id == f"msg_{request_id}" and streamed.id == f"msg_{stream_id}"
    assert stream_id == stream.response.headers["x-request-id"] != request_id
    rows = {row["request_id"] for row in gw.charges()}
    assert {request_id, stream_id} <= rows
