"""Quick checks of the fake OpenAI upstream, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI

MODEL = "gpt-4o-mini-2024-07-18"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the benchmark"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    fake.reset()
    fake.fail_next = []
    fake.cached_tokens = 0
    fake.omit_usage = False
    fake.close_mid_stream_after = None
    fake.tool_call = None
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-fake-upstream", max_retries=0) as c:
        yield c


def test_non_stream_content_and_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert r.choices[0].message.content == "Echo: Say hello to the benchmark"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == MODEL
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-fake-")
    assert r.usage is not None
    # prompt: 3 + 5 words + 3 per message; completion: 6 words.
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (14, 6, 20)
    assert r.usage.prompt_tokens_details is None
    assert fake.calls == 1
    assert fake.requests[0]["json"]["model"] == MODEL
    assert fake.requests[0]["headers"]["authorization"] == "Bearer sk-fake-upstream"
    assert fake.responses[0]["usage"] == r.usage.model_dump(exclude_none=True)
    assert fake.responses[0]["stream"] is False


def test_max_tokens_truncates_and_cached_tokens(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.cached_tokens = 4
    parts = [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": parts}],
        max_completion_tokens=2,
    )
    assert r.choices[0].message.content == "Echo: one"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (6, 2)
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == 4


def test_stream_with_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: Say hello to the benchmark"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (14, 6)
    assert fake.responses[-1]["stream"] is True
    assert fake.responses[-1]["usage"]["total_tokens"] == 20


def test_stream_without_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        "Echo: Say hello to the benchmark"
    )
    assert fake.responses[-1]["usage"] is None


def test_omit_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.omit_usage = True
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert r.usage is None
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.choices and c.usage is None for c in chunks)


def test_tool_call(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.tool_call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=tools)
    assert r.choices[0].finish_reason == "tool_calls"
    calls = r.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}


def test_close_mid_stream(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.close_mid_stream_after = 2
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    got: list[str] = []
    # openai 2.x lets httpx's error through; 3.x wraps it as an APIError.
    with pytest.raises((openai.APIError, httpx.RemoteProtocolError)):
        for c in stream:
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "Echo: Say "
    assert fake.responses[-1]["completed"] is False


def test_wrong_key_is_401(fake: FakeOpenAI) -> None:
    with (
        openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


def test_fail_next(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_next = [(429, "slow down"), (503, "overloaded")]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 429
    with pytest.raises(openai.InternalServerError) as info2:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info2.value.status_code == 503
    assert "overloaded" in str(info2.value)
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert r.choices[0].message.content == "Echo: Say hello to the benchmark"
    assert fake.calls == 3
    assert len(fake.responses) == 1


def test_models(client: openai.OpenAI) -> None:
    assert "gpt-4o-mini-2024-07-18" in [m.id for m in client.models.list()]


async def test_usable_from_async_tests(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-fake-upstream") as c:
        r = await c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert r.choices[0].message.content == "Echo: Say hello to the benchmark"
