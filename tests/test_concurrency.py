"""200 concurrent requests by one user whose balance covers the worst-case hold of 50."""

from __future__ import annotations

import asyncio
from decimal import ROUND_CEILING, Decimal

import httpx
import tiktoken

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"


def worst_case_hold(content: str, max_tokens: int) -> int:
    """The estimated prompt with the documented margin (10 %, rounded up, + 32 tokens)
    at the input price + max_tokens at the output price, +10% markup, rounded up."""
    prompt = 3 + 3 + len(tiktoken.get_encoding("o200k_base").encode(content))
    held = prompt + -(-prompt * 10 // 100) + 32
    usd = (Decimal(held) * Decimal("0.15") + Decimal(max_tokens) * Decimal("0.60")) / 10**6
    nano = usd * Decimal("1.1") * 10**9
    return int(nano.to_integral_value(rounding=ROUND_CEILING))


async def test_200_concurrent_requests_never_overdraw(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    content, max_tokens = "concurrency test", 64
    hold = worst_case_hold(content, max_tokens)
    start = 50 * hold + hold // 2  # room for 50 holds, not 51
    key = gateway.add_user("racer", balance_nano=start)
    fake_openai.held = True  # no request settles until every one was admitted or refused

    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> httpx.Response:
            return await client.post(
                f"{gateway.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "model": MINI,
                    "messages": [{"role": "user", "content": content}],
                    "max_tokens": max_tokens,
                },
            )

        sent = [asyncio.ensure_future(one()) for _ in range(200)]
        for _ in range(6000):  # bounds the wait only; the state decides
            answered = sum(task.done() for task in sent)
            if answered >= 150 and fake_openai.calls >= 50:
                break
            await asyncio.sleep(0.01)
        fake_openai.held = False
        responses = await asyncio.gather(*sent)

    statuses = [r.status_code for r in responses]
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert len(served) + len(refused) == 200, sorted(set(statuses))
    assert len(served) == 50
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    assert fake_openai.calls == 50  # no refused request reached the upstream

    charges = gateway.charges("racer")
    assert len(charges) == 50
    expected = [
        expected_cost_nano(u["prompt_tokens"], u["completion_tokens"], "0.15", "0.60")
        for u in (r["usage"] for r in fake_openai.responses)
    ]
    assert sorted(-c["amount_nano"] for c in charges) == sorted(expected)
    end = gateway.balance("racer")
    assert end >= 0
    assert start - end == -sum(c["amount_nano"] for c in charges) == sum(expected)
    header_costs = sorted(int(Decimal(r.headers["x-gateway-cost-usd"]) * 10**9) for r in served)
    assert header_costs == sorted(expected)
