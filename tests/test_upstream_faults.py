"""Hostile upstreams: whatever a provider sends or does, the client gets an
OpenAI-shaped answer (a 502/504 when nothing was sent yet, an error event in
the stream otherwise), the request is charged exactly for what the provider
already reported plus our count of what was relayed, never more than its hold,
and the hold always ends. Every test ends with no open hold and clean books."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.admin_client import Admin
from tests.fakes.scripted import (
    JSON,
    Cut,
    Hang,
    ScriptedUpstream,
    Send,
    Status,
    anthropic,
    sse,
)
from tests.harness import GatewayServer, body_cost, expected_cost_nano, o200k

MINI = "gpt-4o-mini-2024-07-18"  # 0.15 in, 0.60 out, +10 % markup
HAIKU = "claude-3-5-haiku-20241022"  # 0.80 in, 0.08 cache read, 1.00 cache write, 4.00 out
FLASH = "gemini-2.0-flash"  # 0.10 in, 0.025 cached, 0.40 out
START = 100 * 10**9
CONTENT = "tell me something"
PROMPT = 3 + 3 + 3  # reply priming, one message's framing, and CONTENT's 3 tokens (o200k)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayServer], upstream: ScriptedUpstream) -> GatewayServer:
    upstream.reset()
    return make_gateway(
        {
            "OPENAI_BASE_URL": f"{upstream.base_url}/v1",
            "ANTHROPIC_BASE_URL": upstream.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-scripted",
            "GEMINI_BASE_URL": upstream.base_url,
            "GEMINI_API_KEY": "gm-scripted",
            "GATEWAY_UPSTREAM_READ_TIMEOUT": "2",
            "GATEWAY_COOLDOWN_FAILURES": "1000",
        }
    )


def chat(model: str = MINI, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": CONTENT}], **extra}


def post(gw: GatewayServer, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key or gw.demo_key}"},
        json=body,
        timeout=30,
    )


def stream(gw: GatewayServer, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]], bool]:
    """(status, the JSON events, whether [DONE] came) of a streamed request."""
    events: list[dict[str, Any]] = []
    done = False
    with httpx.stream(
        "POST",
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={**body, "stream": True},
        timeout=30,
    ) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()], False
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return 200, events, done


def relayed(events: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        for choice in event.get("choices") or ()
    )


def books_are_clean(gw: GatewayServer) -> None:
    """No hold left open, and every balance equals its ledger."""
    admin = Admin(gw)
    assert admin.ok(admin.get("/admin/users/demo"))["held_nano"] == 0
    reconcile = admin.ok(admin.get("/admin/reconcile"))
    assert reconcile["clean"] is True and reconcile["open_holds_nano"] == {}


def metric(gw: GatewayServer, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def only_charge(gw: GatewayServer) -> dict[str, Any]:
    [row] = gw.charges()
    assert gw.balance() == START + row["amount_nano"]
    return row


def approx(tokens: int) -> int:
    """The count for a model whose tokenizer is not public: o200k_base + 20 %, up."""
    return -(-tokens * 120 // 100)


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse({"id": "c1", "object": "chat.completion.chunk", "model": MINI, "choices": [choice]})


HEAD = [Status(), Send(openai_chunk({"role": "assistant", "content": ""}))]
HELLO = [Send(openai_chunk({"content": "Hello"})), Send(openai_chunk({"content": " there"}))]


# -- streams that break after the first chunk: an error event, a charge for what was relayed --

BROKEN_MID_STREAM = {
    "malformed JSON": [Send(b"data: {not json\n\n")],
    "invalid UTF-8": [
        Send(b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe"}}]}\n\n')
    ],
    "a wrong-typed field": [Send(sse({"choices": [{"index": 0, "delta": {"content": 5}}]}))],
    "choices not an array": [Send(sse({"choices": "many"}))],
    "an error event": [Send(sse({"error": {"message": "overloaded", "type": "server_error"}}))],
    "a cut": [Cut()],
    "an end without finishing": [],
}


@pytest.mark.parametrize("fault", sorted(BROKEN_MID_STREAM))
def test_a_stream_broken_midway_ends_with_an_error_event_and_is_charged_what_was_relayed(
    gw: GatewayServer, upstream: ScriptedUpstream, fault: str
):
    stops = fault not in ("a cut", "an end without finishing")
    trailing = [Send(openai_chunk({"content": " never relayed"}))] if stops else []
    upstream.play(*HEAD, *HELLO, *BROKEN_MID_STREAM[fault], *trailing)
    status, events, done = stream(gw, chat(max_tokens=50))
    assert status == 200
    assert relayed(events) == "Hello there"
    error = events[-1]["error"]
    assert error["type"] == "upstream_error" and error["code"] == "upstream_error"
    assert not done
    row = only_charge(gw)
    completion = len(o200k().encode("Hello there"))
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT, completion)
    assert row["usage_source"] == "counted"
    assert -row["amount_nano"] == expected_cost_nano(PROMPT, completion, "0.15", "0.60")
    books_are_clean(gw)


def test_a_hung_stream_ends_after_the_read_timeout(gw: GatewayServer, upstream: ScriptedUpstream):
    upstream.play(*HEAD, *HELLO, Hang())
    status, events, _ = stream(gw, chat(max_tokens=50))
    assert status == 200 and relayed(events) == "Hello there"
    assert events[-1]["error"]["code"] == "upstream_timeout"
    completion = len(o200k().encode("Hello there"))
    assert -only_charge(gw)["amount_nano"] == expected_cost_nano(PROMPT, completion, "0.15", "0.60")
    books_are_clean(gw)


# -- streams that fail before their first chunk: a clean 502, nothing charged --

BROKEN_AT_ONCE = {
    "malformed JSON": ([Status(), Send(b"data: [[[\n\n")], "not valid JSON"),
    "an object expected": ([Status(), Send(sse([1, 2]))], "a chunk is not an object"),
    "an error event": (
        [Status(), Send(sse({"error": {"message": "no capacity", "type": "server_error"}}))],
        "no capacity",
    ),
    "an empty body": ([Status()], "ended before its answer was finished"),
}


@pytest.mark.parametrize("fault", sorted(BROKEN_AT_ONCE))
def test_a_stream_that_fails_before_its_first_chunk_is_a_502_and_costs_nothing(
    gw: GatewayServer, upstream: ScriptedUpstream, fault: str
):
    script, said = BROKEN_AT_ONCE[fault]
    upstream.play(*script)
    status, [body], _ = stream(gw, chat(max_tokens=50))
    assert status == 502
    assert body["error"]["code"] == "upstream_error"
    assert said in body["error"]["message"]
    assert gw.charges() == [] and gw.balance() == START
    books_are_clean(gw)


def test_the_sdk_sees_a_mid_stream_failure_as_an_api_error(
    gw: GatewayServer, upstream: ScriptedUpstream
):
    upstream.play(*HEAD, *HELLO, Send(sse({"error": {"message": "overloaded"}})))
    client = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=gw.demo_key, max_retries=0)
    said = []
    with pytest.raises(openai.APIError, match="overloaded"):
        for chunk in client.chat.completions.create(**chat(max_tokens=50), stream=True):
            said += [c.delta.content or "" for c in chunk.choices]
    assert "".join(said) == "Hello there"
    books_are_clean(gw)


# -- non-streamed answers that cannot be read: 502, nothing charged --

BAD_ANSWERS = {
    "malformed JSON": b"{nope",
    "not an object": b"[]",
    "no choices": json.dumps({"id": "x"}).encode(),
    "choices not an array": json.dumps({"choices": {"0": {}}}).encode(),
    "content not a string": json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": 5}}]}
    ).encode(),
    "an error in a 200": json.dumps({"error": {"message": "quota"}}).encode(),
}


@pytest.mark.parametrize("fault", sorted(BAD_ANSWERS))
def test_an_answer_that_cannot_be_read_is_a_502_and_costs_nothing(
    gw: GatewayServer, upstream: ScriptedUpstream, fault: str
):
    upstream.answer(BAD_ANSWERS[fault])
    response = post(gw, chat(max_tokens=50))
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_error"
    assert gw.charges() == [] and gw.balance() == START
    books_are_clean(gw)


# -- usage figures are not trusted --


def answer(usage: Any, content: str = "Hi there", choices: int = 1) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MINI,
        "choices": [
            {"index": n, "message": message, "logprobs": None, "finish_reason": "stop"}
            for n in range(choices)
        ],
        "usage": usage,
    }


IMPLAUSIBLE = {
    "negative": {"prompt_tokens": -2_000_000, "completion_tokens": 5, "total_tokens": 0},
    "a float of 1e30": {"prompt_tokens": 1e30, "completion_tokens": 5, "total_tokens": 1e30},
    "a trillion": {"prompt_tokens": 10**12, "completion_tokens": 5, "total_tokens": 10**12},
    "a string": {"prompt_tokens": "9", "completion_tokens": 5, "total_tokens": 14},
    "a boolean": {"prompt_tokens": True, "completion_tokens": 5, "total_tokens": 6},
    "missing figures": {"total_tokens": 14},
    "more cached than prompt": {
        "prompt_tokens": 9,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 90},
    },
    "not an object": [9, 5],
}


@pytest.mark.parametrize("kind", sorted(IMPLAUSIBLE))
def test_implausible_usage_is_kept_raw_and_our_own_count_is_billed(
    gw: GatewayServer, upstream: ScriptedUpstream, kind: str
):
    upstream.answer(answer(IMPLAUSIBLE[kind]))
    response = post(gw, chat(max_tokens=50))
    assert response.status_code == 200, response.text
    completion = len(o200k().encode("Hi there"))
    cost = expected_cost_nano(PROMPT, completion, "0.15", "0.60")
    assert body_cost(response.json()["usage"]) == f"{Decimal(cost) / 10**9:.9f}"
    row = only_charge(gw)
    assert -row["amount_nano"] == cost
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT, completion)
    assert row["usage_source"] == "anomaly"
    assert json.loads(row["usage_raw"]) == IMPLAUSIBLE[kind]
    # The ledger writer survived it: the next request is served and billed.
    upstream.answer(answer({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}))
    assert post(gw, chat(max_tokens=50)).status_code == 200
    assert len(gw.charges()) == 2
    assert metric(gw, "gateway_usage_anomalies_total", model=MINI, provider="openai") == 1
    books_are_clean(gw)


def hold_of(prompt: int, output: int, inp: str, out: str, markup: str = "10") -> int:
    """The documented hold: the prompt estimate + 10 % (rounded up) + 32 tokens at
    the input price, the output allowed at the output price, with markup, rounded up."""
    held = prompt + -(-prompt * 10 // 100) + 32
    usd = (Decimal(held) * Decimal(inp) + Decimal(output) * Decimal(out)) / 10**6
    nano = usd * (100 + Decimal(markup)) / 100 * 10**9
    return int(nano.to_integral_value(rounding=ROUND_CEILING))


def test_usage_beyond_the_hold_is_capped_and_the_rest_recorded_as_uncollected(
    gw: GatewayServer, upstream: ScriptedUpstream
):
    hold = hold_of(PROMPT, 50, "0.15", "0.60")
    key = gw.add_user("small", hold)  # exactly one hold's worth
    usage = {"prompt_tokens": 4_000_000, "completion_tokens": 50, "total_tokens": 4_000_050}
    upstream.answer(answer(usage))
    response = post(gw, chat(max_tokens=50), key)
    assert response.status_code == 200, response.text
    cost = expected_cost_nano(4_000_000, 50, "0.15", "0.60")
    [row] = gw.charges("small")
    assert -row["amount_nano"] == hold < cost
    assert row["uncollected_nano"] == cost - hold
    assert row["usage_source"] == "provider"
    assert gw.balance("small") == 0
    assert response.headers["x-gateway-cost-usd"] == f"{Decimal(hold) / 10**9:.9f}"
    # Nothing is left to hold against: the next request is refused, not overdrawn.
    assert post(gw, chat(max_tokens=50), key).status_code == 402
    assert metric(gw, "gateway_uncollected_nano_usd_total", model=MINI) == cost - hold
    # The operator sees it beside the books, to square with the provider's invoice.
    admin = Admin(gw)
    [usage] = admin.ok(admin.get("/admin/usage", group_by="user"))["data"]
    assert (usage["cost_nano"], usage["uncollected_nano"]) == (hold, cost - hold)
    reconcile = admin.ok(admin.get("/admin/reconcile"))
    assert (reconcile["uncollected_nano"], reconcile["usage_anomalies"]) == (cost - hold, 0)
    books_are_clean(gw)


def test_n_choices_are_held_for_and_charged(gw: GatewayServer, upstream: ScriptedUpstream):
    one = hold_of(PROMPT, 40, "0.15", "0.60")
    four = hold_of(PROMPT, 4 * 40, "0.15", "0.60")
    key = gw.add_user("fourfold", four - 1)  # covers one answer's hold, not four
    refused = post(gw, chat(max_tokens=40, n=4), key)
    assert refused.status_code == 402 and one < four - 1
    assert upstream.requests == []
    usage = {"prompt_tokens": 9, "completion_tokens": 160, "total_tokens": 169}
    upstream.answer(answer(usage, choices=4))
    rich = gw.add_user("rich2", 10 * four)
    response = post(gw, chat(max_tokens=40, n=4), rich)
    assert response.status_code == 200 and len(response.json()["choices"]) == 4
    [row] = gw.charges("rich2")
    assert -row["amount_nano"] == expected_cost_nano(9, 160, "0.15", "0.60")
    assert row["uncollected_nano"] == 0


def test_a_prompt_larger_than_estimated_never_takes_a_balance_below_zero(
    gw: GatewayServer, upstream: ScriptedUpstream
):
    hold = hold_of(PROMPT, 10, "0.15", "0.60")
    key = gw.add_user("edge", hold + 5)
    usage = {
        "prompt_tokens": PROMPT * 50,
        "completion_tokens": 10,
        "total_tokens": PROMPT * 50 + 10,
    }
    upstream.answer(answer(usage))
    assert post(gw, chat(max_tokens=10), key).status_code == 200
    [row] = gw.charges("edge")
    assert -row["amount_nano"] == hold
    assert row["uncollected_nano"] == expected_cost_nano(PROMPT * 50, 10, "0.15", "0.60") - hold
    assert gw.balance("edge") == 5


def test_a_stream_with_implausible_final_usage_is_billed_from_our_count(
    gw: GatewayServer, upstream: ScriptedUpstream
):
    usage = sse({"choices": [], "usage": {"prompt_tokens": -5, "completion_tokens": -7}})
    upstream.play(
        *HEAD, *HELLO, Send(openai_chunk({}, "stop")), Send(usage), Send(b"data: [DONE]\n\n")
    )
    status, events, done = stream(gw, chat(max_tokens=50))
    assert status == 200 and done and relayed(events) == "Hello there"
    row = only_charge(gw)
    completion = len(o200k().encode("Hello there"))
    assert row["usage_source"] == "anomaly"
    assert -row["amount_nano"] == expected_cost_nano(PROMPT, completion, "0.15", "0.60")
    books_are_clean(gw)


# -- an early end uses every figure the provider already sent --


def claude_start(usage: dict[str, int]) -> list[Send]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": usage}
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    return [
        Send(anthropic({"type": "message_start", "message": message})),
        Send(anthropic(block)),
        Send(anthropic({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": "Cached"}})),
        Send(anthropic({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": " answer"}})),
    ]  # fmt: skip


def haiku_nano(inp: int, read: int, write: int, out: int) -> int:
    usd = (
        Decimal(inp) * Decimal("0.80")
        + Decimal(read) * Decimal("0.08")
        + Decimal(write) * Decimal("1.00")
        + Decimal(out) * Decimal("4.00")
    ) / 10**6
    return int((usd * Decimal("1.1") * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    ("read", "write"), [(3000, 0), (0, 3000)], ids=["mostly cached", "cache write"]
)
@pytest.mark.parametrize("end", ["cut", "error event"])
def test_a_claude_stream_that_ends_early_is_charged_with_message_start_usage(
    gw: GatewayServer, upstream: ScriptedUpstream, read: int, write: int, end: str
):
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "output_tokens": 1,
    }
    tail = Cut() if end == "cut" else Send(anthropic({"type": "error", "error": {"message": "x"}}))
    upstream.play(Status(), *claude_start(usage), tail)
    long_prompt = "context " * 3000  # the hold covers a prompt this size
    body = {
        "model": HAIKU,
        "messages": [{"role": "user", "content": long_prompt}],
        "max_tokens": 64,
    }
    status, events, done = stream(gw, body)
    assert status == 200 and relayed(events) == "Cached answer" and not done
    assert "error" in events[-1]
    row = only_charge(gw)
    output = approx(len(o200k().encode("Cached answer")))
    assert row["usage_source"] == "partial"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12 + read + write, output)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (read, write)
    assert -row["amount_nano"] == haiku_nano(12, read, write, output)
    books_are_clean(gw)


def test_a_gemini_stream_cut_midway_is_charged_with_its_latest_usage(
    gw: GatewayServer, upstream: ScriptedUpstream
):
    def piece(said: str, candidates: int) -> Send:
        content = {"role": "model", "parts": [{"text": said}]}
        usage = {"promptTokenCount": 40, "candidatesTokenCount": candidates}
        return Send(sse({"candidates": [{"content": content, "index": 0}], "usageMetadata": usage}))

    upstream.play(Status(), piece("Hello", 30), piece(" world", 60), Cut())
    status, events, _ = stream(gw, chat(FLASH, max_tokens=100))
    assert status == 200 and relayed(events) == "Hello world"
    assert "error" in events[-1]
    row = only_charge(gw)
    # The provider's figures so far (40 in, 60 out) beat our count of two words.
    assert (row["prompt_tokens"], row["completion_tokens"]) == (40, 60)
    assert -row["amount_nano"] == expected_cost_nano(40, 60, "0.10", "0.40")
    books_are_clean(gw)


def test_an_answer_whose_encoding_is_broken_is_a_502(gw: GatewayServer, upstream: ScriptedUpstream):
    upstream.play(Status(200, {**JSON, "Content-Encoding": "gzip"}), Send(b"\x1f\x8b\x08junk"))
    response = post(gw, chat(max_tokens=10))
    assert response.status_code == 502
    assert gw.charges() == []
    books_are_clean(gw)
