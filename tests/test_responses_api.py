"""POST /v1/responses: the openai SDK (validating every answer strictly) and
LangChain against the gateway, metered like any request, to the nano-USD."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from gateway.proxy.validation.responses import CARRIED, IGNORED
from tests.admin_client import Admin
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text
from tests.test_anthropic import HAIKU, haiku_cost
from tests.test_streaming import assert_charged_for_what_was_relayed

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def sdk(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.base_url}/v1",
        api_key=gateway.demo_key,
        max_retries=0,
        _strict_response_validation=True,
    )


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with sdk(gateway) as client:
        yield client


def mini_cost(fake: FakeOpenAI) -> int:
    usage = fake.responses[-1]["usage"]
    return expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")


def exact_cost(usage: dict[str, Any]) -> Decimal:
    """A usage's `cost`, as the digits on the wire."""
    cost = usage["cost"]
    assert isinstance(cost, Decimal), cost
    return cost


def nano(usd: Decimal) -> int:
    scaled = usd * 10**9
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def assert_charged(gateway: GatewayServer, request_id: str, cost: int) -> None:
    """One ledger row for the request, of exactly `cost`, and the balance down by it."""
    [row] = gateway.charges()
    assert (row["request_id"], row["amount_nano"]) == (request_id, -cost)
    assert gateway.balance() == START - cost


def test_a_response_is_metered_and_its_cost_is_the_ledger_row(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    raw = client.responses.with_raw_response.create(
        model=MINI,
        input="hello from responses",
        instructions="Be brief.",
        max_output_tokens=64,
        temperature=0.5,
        metadata={"team": "blue"},
        store=False,
    )
    response = raw.parse()  # validated strictly against the SDK's Response model
    sent = fake_openai.requests[-1]["json"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello from responses"},
    ]
    assert (sent["max_completion_tokens"], sent["temperature"]) == (64, 0.5)
    request_id = raw.headers["x-request-id"]
    assert response.id == f"resp_{request_id}"
    assert response.output_text == "Echo: hello from responses"
    assert (response.status, response.model, response.store) == ("completed", MINI, False)
    assert (response.instructions, response.max_output_tokens) == ("Be brief.", 64)
    assert response.metadata == {"team": "blue"}
    upstream = fake_openai.responses[-1]["usage"]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        upstream["prompt_tokens"],
        upstream["completion_tokens"],
    )
    cost = mini_cost(fake_openai)
    body = json.loads(raw.http_response.content, parse_float=Decimal)
    assert nano(exact_cost(body["usage"])) == cost
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost) == f"{exact_cost(body['usage']):.9f}"
    assert_charged(gateway, request_id, cost)


def test_a_streamed_response_sends_the_events_in_order_and_the_cost_last(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    raw = client.responses.with_raw_response.create(
        model=MINI, input="stream it please", stream=True
    )
    events = list(raw.parse())  # each validated strictly as its event type
    names = [event.type for event in events]
    deltas = names.count("response.output_text.delta")
    assert deltas == 4  # one a word: "Echo: stream it please"
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Echo: stream it please"
    request_id = raw.headers["x-request-id"]
    assert final.response.id == f"resp_{request_id}"
    assert raw.headers["x-gateway-model"] == MINI
    cost = mini_cost(fake_openai)
    assert final.response.usage is not None
    assert (
        final.response.usage.output_tokens
        == fake_openai.responses[-1]["usage"]["completion_tokens"]
    )
    # The last event's cost, read from the wire with every digit.
    extra = final.response.usage.model_extra or {}
    assert f"{Decimal(repr(extra['cost'])):.9f}" == usd_text(cost)
    assert_charged(gateway, request_id, cost)


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_and_its_output_over_two_turns(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI, stream: bool
):
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    question = {"role": "user", "content": "weather in Paris?"}
    if stream:
        with client.responses.stream(model=MINI, input=[question], tools=[WEATHER]) as events:
            kinds = [event.type for event in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        first = client.responses.create(model=MINI, input=[question], tools=[WEATHER])
    sent = fake_openai.requests[-1]["json"]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                key: WEATHER[key] for key in ("name", "description", "parameters", "strict")
            },
        }
    ]
    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.status) == (
        "get_weather",
        '{"city": "Paris"}',
        "completed",
    )
    assert call.call_id.startswith("call_fake_")
    fake_openai.tool_call = None
    second = client.responses.create(
        model=MINI,
        tools=[WEATHER],
        input=[
            question,
            call.model_dump(exclude_none=True),  # as a client sends it back
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    messages = fake_openai.requests[-1]["json"]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert second.output_text == "Echo: weather in Paris?"
    rows = gateway.charges()
    assert len(rows) == 2
    assert gateway.balance() == START + sum(row["amount_nano"] for row in rows)


class City(BaseModel):
    city: str
    country: str


def test_a_json_schema_format_reaches_the_model_and_parses(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.replies[MINI] = '{"city": "Paris", "country": "France"}'
    parsed = client.responses.parse(model=MINI, input="Where is the Louvre?", text_format=City)
    assert parsed.output_parsed == City(city="Paris", country="France")
    form = fake_openai.requests[-1]["json"]["response_format"]
    assert form["type"] == "json_schema"
    assert (form["json_schema"]["name"], form["json_schema"]["strict"]) == ("City", True)
    assert form["json_schema"]["schema"]["required"] == ["city", "country"]
    assert parsed.text is not None and parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"
    assert gateway.balance() == START - mini_cost(fake_openai)


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_cut_at_max_output_tokens_is_incomplete_and_charged(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI, stream: bool
):
    asked = {"model": MINI, "input": "one two three four five", "max_output_tokens": 3}
    if stream:
        with client.responses.stream(**asked) as events:  # type: ignore[arg-type]
            last = list(events)[-1]
        # The SDK keeps only a completed response: the incomplete one is its last event's.
        assert last.type == "response.incomplete"
        response = last.response
    else:
        response = client.responses.create(**asked)  # type: ignore[arg-type]
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    text = response.output_text
    assert text == "Echo: one two"
    assert fake_openai.requests[-1]["json"]["max_completion_tokens"] == 3
    assert gateway.balance() == START - mini_cost(fake_openai)


REFUSED = [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
    ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
    ({"background": True}, "background", "unsupported_parameter"),
    ({"store": True}, "store", "unsupported_parameter"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "invalid_value"),
    (
        {"input": [{"type": "item_reference", "id": "msg_1"}]},
        "input[0].type",
        "unsupported_parameter",
    ),
    ({"temperature": 3}, "temperature", "invalid_value"),
    ({"input": [{"role": "user", "content": 5}]}, "input[0].content", "invalid_type"),
]


def test_a_refused_request_is_a_400_and_changes_nothing(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    for fields, param, code in REFUSED:  # one gateway for all: each is refused before a hold
        response = httpx.post(
            f"{gateway.base_url}/v1/responses",
            headers={"Authorization": f"Bearer {gateway.demo_key}"},
            json={"model": MINI, "input": "hi", **fields},
        )
        assert response.status_code == 400, fields
        error = response.json()["error"]
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            param,
            code,
        ), fields
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert fake_openai.calls == 0
    assert gateway.balance() == START and gateway.charges() == []


def test_the_sdk_raises_a_refusal_with_its_code(client: openai.OpenAI, fake_openai: FakeOpenAI):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MINI, input="again", previous_response_id="resp_abc")
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "previous_response_id"
    assert "does not keep responses" in refused.value.message
    assert fake_openai.calls == 0


def test_a_stored_response_cannot_be_read_deleted_or_cancelled(
    client: openai.OpenAI, gateway: GatewayServer
):
    for call in (
        lambda: client.responses.retrieve("resp_abc"),
        lambda: client.responses.delete("resp_abc"),
        lambda: client.responses.cancel("resp_abc"),
        lambda: client.responses.input_items.list("resp_abc"),
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            call()
        assert missing.value.code == "response_not_found"
        assert "does not keep responses" in missing.value.message
    anonymous = httpx.get(f"{gateway.base_url}/v1/responses/resp_abc")
    assert anonymous.status_code == 401


def test_auto_routes_a_response_and_bills_the_chosen_model(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    raw = client.responses.with_raw_response.create(model="auto", input="Hi! How are you today?")
    response = raw.parse()
    chosen = raw.headers["x-gateway-model"]
    assert response.model == chosen != "auto"
    assert raw.headers["x-gateway-route-preset"] == "balanced"
    [row] = gateway.charges()
    assert row["model_id"] == chosen
    body = json.loads(raw.http_response.content, parse_float=Decimal)
    assert nano(exact_cost(body["usage"])) == -row["amount_nano"] > 0
    assert raw.headers["x-gateway-cost-usd"] == usd_text(-row["amount_nano"])


@pytest.fixture
def claude_gateway(
    make_gateway: Callable[..., GatewayServer],
    every_provider_env: dict[str, str],
    upstreams: tuple[FakeAnthropic, FakeGemini],
) -> tuple[GatewayServer, FakeAnthropic]:
    claude = upstreams[0]
    claude.reset()
    return make_gateway(env=every_provider_env), claude


def test_a_claude_model_answers_through_responses(
    claude_gateway: tuple[GatewayServer, FakeAnthropic],
):
    gateway, claude = claude_gateway
    with sdk(gateway) as client:
        raw = client.responses.with_raw_response.create(
            model=HAIKU, input="hello claude", instructions="Be brief.", max_output_tokens=50
        )
        response = raw.parse()
        sent = claude.requests[-1]["json"]
        with client.responses.stream(model=HAIKU, input="stream claude") as events:
            streamed = events.get_final_response()
    assert (sent["system"], sent["max_tokens"]) == ("Be brief.", 50)
    assert response.model == HAIKU and response.status == "completed"
    assert "hello claude" in response.output_text
    assert "stream claude" in streamed.output_text
    costs = [haiku_cost(answer["usage"]) for answer in claude.responses]
    assert [-row["amount_nano"] for row in gateway.charges()] == costs
    body = json.loads(raw.http_response.content, parse_float=Decimal)
    assert nano(exact_cost(body["usage"])) == costs[0]
    assert streamed.usage is not None
    assert f"{Decimal(repr((streamed.usage.model_extra or {})['cost'])):.9f}" == usd_text(costs[1])
    assert gateway.balance() == START - sum(costs)


def test_a_cut_upstream_stream_raises_in_the_sdk_and_charges_what_was_relayed(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    fake_openai.close_mid_stream_after = 3
    content = "one two three four five six seven"
    relayed = ""
    with pytest.raises(openai.APIError) as failed:
        for event in client.responses.create(model=MINI, input=content, stream=True):
            if event.type == "response.output_text.delta":
                relayed += event.delta
    assert "closed the connection" in failed.value.message
    assert relayed == "Echo: one two "
    assert_charged_for_what_was_relayed(gateway, content, relayed)


def test_langchain_invokes_and_streams_through_responses(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model=MINI,
        base_url=f"{gateway.base_url}/v1",
        api_key=gateway.demo_key,  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
    )
    answer = chat.invoke("hello langchain")
    assert answer.text == "Echo: hello langchain"
    assert answer.usage_metadata is not None
    upstream = fake_openai.responses[-1]["usage"]
    assert answer.usage_metadata["input_tokens"] == upstream["prompt_tokens"]
    pieces = list(chat.stream("stream langchain"))
    assert "".join(piece.text for piece in pieces) == "Echo: stream langchain"
    # A tool call, and its result sent back as LangChain replays a conversation.
    fake_openai.tool_call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    function = {key: WEATHER[key] for key in ("name", "description", "parameters")}
    tools = chat.bind_tools([{"type": "function", "function": function}])
    question = HumanMessage("weather in Paris?")
    called = tools.invoke([question])
    [call] = called.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    fake_openai.tool_call = None
    result = ToolMessage("sunny", tool_call_id=str(call["id"]))
    assert tools.invoke([question, called, result]).text == "Echo: weather in Paris?"
    assert fake_openai.requests[-1]["json"]["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    rows = gateway.charges()
    assert len(rows) == 4
    assert gateway.balance() == START + sum(row["amount_nano"] for row in rows)


def test_the_openapi_document_describes_the_routes_and_the_answer(
    client: openai.OpenAI, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    spec = Admin(gateway).ok(Admin(gateway).get("/admin/openapi.json"))
    schemas = spec["components"]["schemas"]
    assert spec["paths"]["/v1/responses"]["post"]["operationId"] == "create_response"
    assert set(spec["paths"]["/v1/responses/{response_id}"]) == {"get", "delete"}
    # The request schema names exactly the fields the gateway takes.
    assert set(schemas["ResponsesRequest"]["properties"]) == CARRIED | IGNORED
    raw = client.responses.with_raw_response.create(model=MINI, input="describe me")
    answer = raw.http_response.json()
    for value, name in ((answer, "ResponseObject"), (answer["usage"], "ResponseUsage")):
        schema = schemas[name]
        assert set(schema["required"]) <= set(value) <= set(schema["properties"]), name
