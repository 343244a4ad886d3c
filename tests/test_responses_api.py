"""POST /v1/responses through the real openai SDK (strict validation), metered
like chat: exact usage and cost, equal to the header and the ledger row."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text

MINI = "gpt-4o-mini-2024-07-18"
HAIKU = "claude-3-5-haiku-20241022"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gateway.base_url}/v1",
        api_key=gateway.demo_key,
        max_retries=0,
        _strict_response_validation=True,
    ) as c:
        yield c


def mini_cost(fake: FakeOpenAI) -> int:
    usage = fake.responses[-1]["usage"]
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")


def charged(gw: GatewayServer, request_id: str) -> int:
    return -next(r for r in gw.charges() if r["request_id"] == request_id)["amount_nano"]


def test_a_response_is_answered_and_charged_exactly(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    raw = client.responses.with_raw_response.create(
        model=MINI,
        instructions="Be brief.",
        input="hello responses",
        max_output_tokens=50,
        metadata={"ticket": "42"},
    )
    response = raw.parse()
    sent = fake_openai.requests[-1]["json"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello responses"},
    ]
    assert sent["max_tokens"] == 50
    cost = mini_cost(fake_openai)
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == "Echo: hello responses"
    assert response.metadata == {"ticket": "42"} and response.instructions == "Be brief."
    assert response.id == f"resp_{raw.headers['x-request-id']}"
    usage = fake_openai.responses[-1]["usage"]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    exact = json.loads(raw.http_response.text, parse_float=Decimal)["usage"]
    assert exact["cost"] == Decimal(raw.headers["x-gateway-cost-usd"]) == Decimal(usd_text(cost))
    assert charged(gateway, raw.headers["x-request-id"]) == cost


def test_a_tool_call_and_its_output_make_a_second_turn(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    first = client.responses.create(
        model=MINI, input="weather in Paris?", tools=[WEATHER], tool_choice="auto"
    )
    sent = fake_openai.requests[-1]["json"]
    assert sent["tools"] == [
        {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    ]
    assert sent["tool_choice"] == "auto"
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, c.arguments, c.status) for c in calls] == [
        ("get_weather", '{"city": "Paris"}', "completed")
    ]
    fake_openai.tool_call = None
    second = client.responses.create(
        model=MINI,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        ],
    )
    sent = fake_openai.requests[-1]["json"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == calls[0].call_id
    assert sent[2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "sunny"}
    assert second.status == "completed"
    assert len(gateway.charges()) == 2


def test_a_streamed_response_sends_the_typed_events_in_order_and_its_cost_at_the_end(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    with client.responses.with_streaming_response.create(
        model=MINI, input="stream these words", stream=True
    ) as raw:
        request_id = raw.headers["x-request-id"]
        events = list(raw.parse())
    kinds = [event.type for event in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: stream these words"
    final = events[-1].response
    assert final.output_text == text and final.usage is not None
    cost = mini_cost(fake_openai)
    assert Decimal(repr(final.usage.model_extra["cost"])) == Decimal(usd_text(cost))
    assert charged(gateway, request_id) == cost


def test_a_streamed_tool_call_sends_its_arguments_as_deltas(
    client: openai.OpenAI, fake_openai: FakeOpenAI
):
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    with client.responses.stream(model=MINI, input="weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert (done.name, done.arguments) == ("get_weather", '{"city": "Oslo"}')
    assert [item.type for item in final.output] == ["function_call"]


def test_json_schema_output_and_a_length_cut_are_reported(
    client: openai.OpenAI, fake_openai: FakeOpenAI
):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    cut = client.responses.create(
        model=MINI,
        input="one two three four five six seven",
        max_output_tokens=3,
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema}},
    )
    sent = fake_openai.requests[-1]["json"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema},
    }
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
        ({"store": True}, "store", "unsupported_parameter"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_value"),
        ({"input": [{"type": "mystery"}]}, "input[0].type", "unsupported_value"),
        ({"input": []}, "input", "invalid_type"),
        ({"max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"text": {"format": {"type": "json_schema"}}}, "text.format.name", "missing"),
    ],
)
def test_what_the_gateway_cannot_do_is_a_clear_400_that_changes_nothing(
    gateway: GatewayServer, extra: dict[str, Any], param: str, code: str
):
    before = gateway.balance()
    answer = httpx.post(
        f"{gateway.base_url}/v1/responses",
        headers={"Authorization": f"Bearer {gateway.demo_key}"},
        json={"model": MINI, "input": "hi", **extra},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert gateway.balance() == before and gateway.charges() == []


def test_a_stored_response_cannot_be_fetched(gateway: GatewayServer):
    answer = httpx.get(
        f"{gateway.base_url}/v1/responses/resp_123",
        headers={"Authorization": f"Bearer {gateway.demo_key}"},
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "response_not_found"


@pytest.fixture
def claude(make_gateway: Callable[..., GatewayServer]) -> Iterator[tuple[GatewayServer, Any]]:
    with FakeAnthropic() as fake:
        gw = make_gateway(env={"ANTHROPIC_BASE_URL": fake.base_url,
                               "ANTHROPIC_API_KEY": fake.api_key})  # fmt: skip
        yield gw, fake


def test_a_response_is_served_by_an_anthropic_model_and_by_auto(
    claude: tuple[GatewayServer, FakeAnthropic],
):
    gw, _ = claude
    with openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0,
                       _strict_response_validation=True) as sdk:  # fmt: skip
        raw = sdk.responses.with_raw_response.create(model=HAIKU, input="hello claude")
        routed = sdk.responses.with_raw_response.create(model="auto", input="hi")
    response = raw.parse()
    assert response.model == HAIKU and response.output_text == "Echo: hello claude"
    assert response.usage is not None
    cost = charged(gw, raw.headers["x-request-id"])
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == Decimal(cost) / 10**9
    assert routed.parse().status == "completed"
    assert routed.headers["x-gateway-route-preset"] == "balanced"


def test_langchain_invokes_and_streams_through_the_responses_api(gateway: GatewayServer):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="mock-1",
        base_url=f"{gateway.base_url}/v1",
        api_key=gateway.demo_key,  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
    )
    answer = model.invoke("hello langchain")
    assert "hello langchain" in answer.text
    streamed = "".join(chunk.text for chunk in model.stream("stream langchain"))
    assert "stream langchain" in streamed
    assert len(gateway.charges()) == 2
