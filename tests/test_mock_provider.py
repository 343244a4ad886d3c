"""The built-in mock provider end to end, through the real openai SDK and a
gateway with no provider keys: `n`, `stop`, `max_tokens`, tool calls,
`response_format`, streamed and not; `mock-embed-1` and `mock-instruct-1`.
Outputs are checked exactly (JSON against its schema with jsonschema) and
costs to the nano-USD on the headers, the ledger row and the balance."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
import tiktoken

from billing.tokens import TokenCounter
from tests.harness import GatewayServer, expected_cost_nano, usd_text

HI = [{"role": "user", "content": "Hi"}]
REPLY = "Hello from mock-1, the gateway's mock model. You said: Hi"
FLIGHT = {
    "type": "object",
    "properties": {
        "origin": {"type": "string", "minLength": 3, "maxLength": 3},
        "destination": {"type": "string", "minLength": 3, "maxLength": 3},
        "date": {"type": "string", "format": "date"},
        "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
        "cabin": {"enum": ["economy", "business"]},
        "flexible": {"type": "boolean"},
    },
    "required": ["origin", "destination", "date", "passengers"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "book_flight", "parameters": FLIGHT}},
]
BOOK = [{"role": "user", "content": "Please book_flight for me"}]


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, counter: TokenCounter, tiktoken_dir: Path
) -> Iterator[GatewayServer]:
    env = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "TIKTOKEN_CACHE_DIR": str(tiktoken_dir)}
    with GatewayServer(tmp_path_factory.mktemp("mock"), counter, env) as server:
        yield server


@pytest.fixture(scope="module")
def client(gw: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0) as sdk:
        yield sdk


def tokens(text: str, encoding: str = "o200k_base") -> int:
    return len(tiktoken.get_encoding(encoding).encode(text))


def mock_cost(prompt: int, completion: int) -> int:
    return expected_cost_nano(prompt, completion, "0.15", "0.60")


def ledger(gw: GatewayServer, request_id: str) -> tuple[int, int, int]:
    """(charged nano-USD, prompt tokens, completion tokens) of a request's ledger row."""
    rows = gw.query(
        "SELECT -amount_nano, prompt_tokens, completion_tokens FROM ledger WHERE request_id = ?",
        request_id,
    )
    assert len(rows) == 1
    return rows[0]


def test_n_choices_are_all_charged(gw: GatewayServer, client: openai.OpenAI):
    before = gw.balance()
    raw = client.chat.completions.with_raw_response.create(model="mock-1", messages=HI, n=2)  # type: ignore[arg-type]
    completion = raw.parse()
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [
        (0, REPLY, "stop"),
        (1, REPLY, "stop"),
    ]
    prompt, output = 3 + 3 + tokens("Hi"), 2 * tokens(REPLY)
    cost = mock_cost(prompt, output)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, output)
    assert raw.headers["x-gateway-cost-usd"] == usd_text(cost)
    assert ledger(gw, raw.headers["x-request-id"]) == (cost, prompt, output)
    assert gw.balance() == before - cost


def test_n_choices_streamed_and_cut_at_a_stop_sequence(gw: GatewayServer, client: openai.OpenAI):
    before = gw.balance()
    chunks = list(
        client.chat.completions.create(
            model="mock-1",
            messages=HI,  # type: ignore[arg-type]
            n=2,
            stop=["said", "mock model"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    texts, finishes = ["", ""], [None, None]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes[choice.index]
    cut = "Hello from mock-1, the gateway's "
    assert (texts, finishes) == ([cut, cut], ["stop", "stop"])
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (6 + tokens("Hi"), 2 * tokens(cut))
    assert gw.balance() == before - mock_cost(usage.prompt_tokens, usage.completion_tokens)


def test_max_tokens_cuts_and_finishes_with_length(client: openai.OpenAI):
    completion = client.chat.completions.create(model="mock-1", messages=HI, max_tokens=4)  # type: ignore[arg-type]
    words = REPLY.split(" ")
    kept = next(
        " ".join(words[:n]) for n in range(len(words), 0, -1) if tokens(" ".join(words[:n])) <= 4
    )
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (
        kept,
        "length",
    )
    assert completion.usage is not None and completion.usage.completion_tokens == tokens(kept)


def test_a_tool_call_is_valid_and_charged_exactly(
    gw: GatewayServer, client: openai.OpenAI, counter: TokenCounter
):
    before = gw.balance()
    raw = client.chat.completions.with_raw_response.create(
        model="mock-1", messages=BOOK, tools=TOOLS
    )  # type: ignore[arg-type]
    choice = raw.parse().choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "book_flight"  # the tool the user named
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, FLIGHT, format_checker=jsonschema.FormatChecker())
    assert set(arguments) == set(FLIGHT["properties"])  # type: ignore[arg-type]
    prompt = counter.count_prompt(BOOK, "o200k_base", [TOOLS])
    output = tokens("book_flight") + tokens(call.function.arguments)
    cost = mock_cost(prompt, output)
    assert ledger(gw, raw.headers["x-request-id"]) == (cost, prompt, output)
    assert gw.balance() == before - cost


def test_a_streamed_tool_call_in_openai_deltas(gw: GatewayServer, client: openai.OpenAI):
    whole = client.chat.completions.create(model="mock-1", messages=BOOK, tools=TOOLS)  # type: ignore[arg-type]
    before = gw.balance()
    chunks = list(
        client.chat.completions.create(
            model="mock-1",
            messages=BOOK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    first, rest = calls[0], calls[1:]
    assert first.id and first.type == "function" and first.function is not None
    assert (first.function.name, first.function.arguments) == ("book_flight", "")
    assert len(rest) >= 2 and all(c.id is None and c.function.name is None for c in rest)  # type: ignore[union-attr]
    arguments = "".join(c.function.arguments or "" for c in rest)  # type: ignore[union-attr]
    assert whole.choices[0].message.tool_calls is not None
    assert arguments == whole.choices[0].message.tool_calls[0].function.arguments
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )
    assert gw.balance() == before - mock_cost(usage.prompt_tokens, usage.completion_tokens)


def test_tool_choice_decides_and_an_agent_loop_ends(client: openai.OpenAI):
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "book_flight", "arguments": "{}"},
    }
    answered = [
        *BOOK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "booked"},
    ]

    def ask(messages: list[Any], tool_choice: Any) -> Any:
        return client.chat.completions.create(
            model="mock-1",
            messages=messages,
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice=tool_choice,
        ).choices[0]

    after_tool = ask(answered, "auto")
    assert (after_tool.finish_reason, after_tool.message.tool_calls) == ("stop", None)
    assert after_tool.message.content == (
        "Hello from mock-1, the gateway's mock model. You said: Please book_flight for me"
    )
    assert ask(answered, "required").message.tool_calls[0].function.name == "book_flight"
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert ask(BOOK, named).message.tool_calls[0].function.arguments == "{}"
    assert ask(BOOK, "none").message.tool_calls is None


def test_an_unknown_named_tool_is_a_400_that_costs_nothing(
    gw: GatewayServer, client: openai.OpenAI
):
    before = gw.balance()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mock-1",
            messages=BOOK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": "launch"}},
        )
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "tool_choice"
    assert "'launch'" in error["message"]
    assert gw.balance() == before


@pytest.mark.parametrize("stream", [False, True])
def test_response_formats(client: openai.OpenAI, stream: bool):
    schema_format = {"type": "json_schema", "json_schema": {"name": "flight", "schema": FLIGHT}}
    for response_format in (schema_format, {"type": "json_object"}):
        content, finish = _ask(client, stream, response_format=response_format)
        value = json.loads(content)
        assert finish == "stop" and isinstance(value, dict)
        if response_format is schema_format:
            jsonschema.validate(value, FLIGHT, format_checker=jsonschema.FormatChecker())
        else:
            assert value == {"reply": REPLY}


def test_json_cut_at_max_tokens(client: openai.OpenAI):
    response_format = {"type": "json_object"}
    content, finish = _ask(client, False, response_format=response_format, max_tokens=3)
    assert finish == "length" and tokens(content) <= 3 and '{"reply":"Hello'.startswith(content)


def _ask(client: openai.OpenAI, stream: bool, **extra: Any) -> tuple[str, str | None]:
    if not stream:
        choice = client.chat.completions.create(model="mock-1", messages=HI, **extra).choices[0]
        return choice.message.content or "", choice.finish_reason
    chunks = list(client.chat.completions.create(model="mock-1", messages=HI, stream=True, **extra))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return content, chunks[-1].choices[0].finish_reason


def test_embeddings(gw: GatewayServer, client: openai.OpenAI):
    before = gw.balance()
    raw = client.embeddings.with_raw_response.create(
        model="mock-embed-1", input=["a cat", "a dog", "a cat"]
    )
    listed = raw.parse()  # the SDK asks for base64 and decodes it
    vectors = [d.embedding for d in listed.data]
    assert [len(v) for v in vectors] == [256, 256, 256]
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert all(abs(math.fsum(x * x for x in v) - 1) < 1e-5 for v in vectors)  # float32
    prompt = tokens("a cat", "cl100k_base") * 2 + tokens("a dog", "cl100k_base")
    cost = expected_cost_nano(prompt, 0, "0.02", "0")
    assert listed.usage.prompt_tokens == prompt
    assert ledger(gw, raw.headers["x-request-id"]) == (cost, prompt, 0)
    assert gw.balance() == before - cost

    short = client.embeddings.create(
        model="mock-embed-1", input="a cat", dimensions=64, encoding_format="float"
    )
    vector = short.data[0].embedding
    assert len(vector) == 64 and abs(math.fsum(x * x for x in vector) - 1) < 1e-9
    scale = vectors[0][0] / vector[0]  # the first 64 of the full vector, scaled
    assert all(abs(a - b * scale) < 1e-5 for a, b in zip(vectors[0][:64], vector, strict=False))


@pytest.mark.parametrize("dimensions", [0, 257, "8"])
def test_bad_dimensions_are_a_400_that_costs_nothing(gw: GatewayServer, dimensions: Any):
    before = gw.balance()
    response = httpx.post(
        f"{gw.base_url}/v1/embeddings",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": "mock-embed-1", "input": "x", "dimensions": dimensions},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "dimensions"
    assert gw.balance() == before


def test_legacy_completions(gw: GatewayServer, client: openai.OpenAI):
    before = gw.balance()
    raw = client.completions.with_raw_response.create(
        model="mock-instruct-1", prompt=["Once upon", "Twice"], n=2, max_tokens=100, stop="xyz"
    )
    completion = raw.parse()
    once = " and so mock-instruct-1 carries on from: Once upon"
    twice = " and so mock-instruct-1 carries on from: Twice"
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, once, "stop"),
        (1, once, "stop"),
        (2, twice, "stop"),
        (3, twice, "stop"),
    ]
    prompt = tokens("Once upon", "cl100k_base") + tokens("Twice", "cl100k_base")
    output = 2 * tokens(once, "cl100k_base") + 2 * tokens(twice, "cl100k_base")
    cost = expected_cost_nano(prompt, output, "1.50", "2.00")
    assert ledger(gw, raw.headers["x-request-id"]) == (cost, prompt, output)
    assert gw.balance() == before - cost


def test_legacy_completions_streamed_with_stop_and_the_default_limit(client: openai.OpenAI):
    stream = client.completions.create(
        model="mock-instruct-1",
        prompt="Once upon a time there was a gateway that metered every token it relayed",
        stop=["gateway that"],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks)
    full = " and so mock-instruct-1 carries on from: Once upon a time there was a "
    assert full.startswith(text) and tokens(text, "cl100k_base") <= 16  # OpenAI's default cap
    assert chunks[-1].choices[0].finish_reason == "length"
    whole = client.completions.create(model="mock-instruct-1", prompt="Hi", stop=["carries"])
    assert (whole.choices[0].text, whole.choices[0].finish_reason) == (
        " and so mock-instruct-1 ",
        "stop",
    )
