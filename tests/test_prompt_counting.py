"""Counting a prompt never holds the event loop for long, and a caller who cannot
pay is refused before the prompt is counted at all."""

from __future__ import annotations

import threading
from decimal import ROUND_CEILING, Decimal
from typing import Any

import httpx

from billing.tokens import OFF_LOOP_CHARS, PromptTokens, TokenCounter
from tests.harness import GatewayServer, usd_text


class Recording:
    """A counter that notes the thread each encoding runs on."""

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter
        self.threads: list[threading.Thread] = []

    def encoded_length(self, text: str, encoding: str) -> int:
        self.threads.append(threading.current_thread())
        return self._counter.encoded_length(text, encoding)


async def test_a_large_prompt_is_counted_in_a_worker_thread_once_per_encoding(
    counter: TokenCounter,
):
    spy: Any = Recording(counter)
    text = "word " * (OFF_LOOP_CHARS // 5 + 1)
    prompt = PromptTokens(spy, [text], fixed=3)
    await prompt.count_all_if_large()
    assert len(spy.threads) == 2  # o200k_base and cl100k_base
    assert threading.current_thread() not in spy.threads
    expected = 3 + counter.count(text, "o200k_base")
    assert prompt.tokens("o200k_base") == expected
    assert prompt.tokens("approx") == 3 + -(-(expected - 3) * 120 // 100)
    assert len(spy.threads) == 2  # nothing counted again, nothing on the loop


async def test_a_small_prompt_is_counted_on_the_loop_when_asked(counter: TokenCounter):
    spy: Any = Recording(counter)
    prompt = PromptTokens(spy, ["hello there"], fixed=0)
    await prompt.count_all_if_large()
    assert spy.threads == []
    assert prompt.tokens("cl100k_base") == 2
    assert spy.threads == [threading.current_thread()]


def test_a_caller_who_cannot_pay_the_output_is_refused_before_the_prompt_is_counted(
    gateway: GatewayServer,
):
    key = gateway.add_user("broke", 0)
    prompt = "lorem ipsum " * 400_000  # 4.8 MB: seconds of counting, were it counted
    response = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-4o-mini-2024-07-18",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 100,
        },
        timeout=60,
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota"
    # The amount it names is the floor checked before counting: the margin's 32
    # prompt tokens and the 100 output tokens (0.15 and 0.60 per million, +10 %),
    # not a hold that counted the prompt's 800,000 tokens.
    floor = (Decimal(32) * Decimal("0.15") + Decimal(100) * Decimal("0.60")) * Decimal("1.1")
    nano = int((floor * 1000).to_integral_value(rounding=ROUND_CEILING))
    assert f"up to ${usd_text(nano)}" in error["message"]


def test_a_routed_request_from_a_caller_with_nothing_left_is_refused_before_routing(
    gateway: GatewayServer,
):
    key = gateway.add_user("empty", 0)
    response = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "auto", "messages": [{"role": "user", "content": "lorem " * 200_000}]},
        timeout=60,
    )
    assert response.status_code == 402
    assert "x-gateway-route-category" not in response.headers
    assert f"up to ${usd_text(1)}" in response.json()["error"]["message"]


async def test_an_encoding_first_needed_is_loaded_off_the_loop(tiktoken_dir: Any, monkeypatch: Any):
    import tiktoken

    loads: list[tuple[str, threading.Thread]] = []
    real = tiktoken.get_encoding

    def recording(name: str) -> Any:
        loads.append((name, threading.current_thread()))
        return real(name)

    monkeypatch.setattr(tiktoken, "get_encoding", recording)
    fresh = TokenCounter(tiktoken_dir)
    assert [name for name, _ in loads] == ["o200k_base"]  # only it at start
    await fresh.loaded("cl100k_base")
    assert loads[1][0] == "cl100k_base" and loads[1][1] is not threading.current_thread()
    await fresh.loaded("cl100k_base")
    await fresh.loaded("approx")
    assert len(loads) == 2  # loaded once; "approx" counts with o200k_base
    assert fresh.count("hello there", "cl100k_base") == 2
