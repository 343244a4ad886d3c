"""What a provider sends is bounded: a gzip bomb, an oversized answer, an endless
line, an unknown encoding are each a 502 upstream_error and cost the user
nothing; an honest compressed answer still works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.tokens import TokenCounter
from tests.fakes.hostile_upstream import HostileUpstream, MiB
from tests.harness import GatewayServer

MINI = "gpt-4o-mini-2024-07-18"
LIMITS = {
    "GATEWAY_UPSTREAM_MAX_BODY_BYTES": str(MiB),
    "GATEWAY_UPSTREAM_MAX_LINE_BYTES": str(64 * 1024),
    "GATEWAY_UPSTREAM_MAX_STREAM_BYTES": str(2 * MiB),
}


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[HostileUpstream]:
    with HostileUpstream() as server:
        yield server


@pytest.fixture
def hostile(hostile_server: HostileUpstream) -> Iterator[HostileUpstream]:
    hostile_server.reset()
    yield hostile_server
    hostile_server.reset()


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    hostile_server: HostileUpstream,
    tiktoken_dir: Path,
) -> Iterator[GatewayServer]:
    """One gateway for the module, its "openai" provider pointed at the hostile fake
    (which fails so often here that cooldowns are kept out of the way)."""
    env = {
        "OPENAI_BASE_URL": hostile_server.base_url,
        "OPENAI_API_KEY": "sk-any",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
        "GATEWAY_COOLDOWN_FAILURES": "1000000",
        **LIMITS,
    }
    with GatewayServer(tmp_path_factory.mktemp("upstream") / "data", counter, env) as server:
        yield server


def chat(gw: GatewayServer, key: str, **extra: Any) -> httpx.Response:
    body = {"model": MINI, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=60,
    )


def assert_refused_and_free(response: httpx.Response, gw: GatewayServer, start: int, why: str):
    """A 502 for `why`, and the balance (so the charges) as it was at `start`."""
    assert response.status_code == 502, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert error["code"] == "upstream_error"
    assert why in error["message"]
    assert gw.balance() == start


def test_an_honest_gzip_answer_is_decoded_and_identity_was_asked(
    gw: GatewayServer, hostile: HostileUpstream
):
    response = chat(gw, gw.demo_key)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello there"
    assert hostile.accept_encoding == ["identity"]
    assert gw.charges()[-1]["request_id"] == response.headers["x-request-id"]


def test_an_honest_gzip_stream_is_decoded(gw: GatewayServer, hostile: HostileUpstream):
    response = chat(gw, gw.demo_key, stream=True)
    assert response.status_code == 200, response.text
    datas = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    text = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in map(json.loads, datas[:-1])
        if c.get("choices")
    )
    assert text == "Hello there"


def test_a_gzip_bomb_is_refused_and_not_charged(gw: GatewayServer, hostile: HostileUpstream):
    """300 MiB of answer text, a few hundred KiB compressed, under a 1 MiB bound.
    (That it is inflated a piece at a time, never whole: test_bounded_decoding.)"""
    hostile.mode = "bomb"
    start = gw.balance()
    assert_refused_and_free(chat(gw, gw.demo_key), gw, start, f"more than {MiB} bytes")


def test_an_oversized_plain_answer_is_dropped_before_it_is_read(
    gw: GatewayServer, hostile: HostileUpstream
):
    """Chunked, so no Content-Length gives it away: the bound fires while reading,
    and the provider never gets most of its 300 MiB onto the wire."""
    hostile.mode = "plain"
    start = gw.balance()
    assert_refused_and_free(chat(gw, gw.demo_key), gw, start, f"more than {MiB} bytes")
    assert hostile.sent < 100 * MiB


def test_a_stream_bomb_without_line_ends_fails_before_the_first_byte(
    gw: GatewayServer, hostile: HostileUpstream
):
    hostile.mode = "endless-line"
    start = gw.balance()
    response = chat(gw, gw.demo_key, stream=True)
    assert_refused_and_free(response, gw, start, "a line longer than 65536 bytes")


def test_a_huge_line_in_a_stream_fails_before_the_first_byte(
    gw: GatewayServer, hostile: HostileUpstream
):
    hostile.mode = "bomb"  # a valid answer, but on one 300 MiB line
    start = gw.balance()
    response = chat(gw, gw.demo_key, stream=True)
    assert_refused_and_free(response, gw, start, "a line longer than 65536 bytes")


def test_a_stream_past_its_total_bound_is_cut(gw: GatewayServer, hostile: HostileUpstream):
    """Short valid lines, 300 MiB in all: once 2 MiB have come, the stream ends
    with an error event, and the provider never gets most of it onto the wire."""
    hostile.mode = "long-stream"
    response = chat(gw, gw.demo_key, stream=True)
    assert response.status_code == 200
    last = json.loads(response.text.strip().splitlines()[-1].removeprefix("data: "))
    assert last["error"]["code"] == "upstream_error"
    assert f"more than {2 * MiB} bytes" in last["error"]["message"]
    assert hostile.sent < 100 * MiB


def test_an_unknown_encoding_is_refused(gw: GatewayServer, hostile: HostileUpstream):
    hostile.mode = "brotli"
    start = gw.balance()
    assert_refused_and_free(chat(gw, gw.demo_key), gw, start, "unsupported Content-Encoding 'br'")
    hostile.reset()
    hostile.mode = "brotli"
    assert_refused_and_free(
        chat(gw, gw.demo_key, stream=True), gw, start, "unsupported Content-Encoding 'br'"
    )
