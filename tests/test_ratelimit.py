"""Token buckets: what the limit allows passes, no more, with the right Retry-After."""

from __future__ import annotations

import math
import time

import pytest

from gateway.errors import GatewayError
from gateway.proxy.ratelimit import Limit, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rpm(n: int, owner: str = "k1") -> Limit:
    return Limit("key", owner, "requests", n, 1)


def test_a_burst_of_the_limit_passes_and_the_next_waits_for_one_refill():
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(5):
        limiter.admit([rpm(5)])
    with pytest.raises(GatewayError) as refused:
        limiter.admit([rpm(5)])
    assert refused.value.status == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers == {"Retry-After": "12"}  # one request per 60/5 s
    clock.now += 11.9
    with pytest.raises(GatewayError):
        limiter.admit([rpm(5)])
    clock.now += 0.1
    limiter.admit([rpm(5)])
    with pytest.raises(GatewayError):
        limiter.admit([rpm(5)])


def test_tokens_per_minute_and_retry_after_rounds_up():
    clock = Clock()
    limiter = RateLimiter(clock)
    tokens = Limit("provider", "openai", "tokens", 1000, 600)
    limiter.admit([tokens])
    with pytest.raises(GatewayError) as refused:
        limiter.admit([tokens])  # 400 left, needs 600: 200 more at 1000/60 per s = 12 s
    assert refused.value.headers == {"Retry-After": "12"}
    assert "the provider 'openai'" in refused.value.message


def test_what_a_limit_has_taken_is_read_without_charging_it():
    clock = Clock()
    limiter = RateLimiter(clock)
    tokens = Limit("provider", "openai", "tokens", 600, 250)
    assert limiter.used("provider", "openai", "tokens", 600) == 0  # never charged
    limiter.admit([tokens, tokens])
    assert limiter.used("provider", "openai", "tokens", 600) == 500
    clock.now += 30  # half a minute refills 300
    assert limiter.used("provider", "openai", "tokens", 600) == 200
    assert limiter.used("provider", "openai", "tokens", 600) == 200  # reading takes nothing
    assert limiter.used("provider", "openai", "tokens", 900) == 0  # the limit changed
    assert limiter.used("provider", "openai", "requests", 600) == 0
    clock.now += 60
    assert limiter.used("provider", "openai", "tokens", 600) == 0


def test_all_or_nothing_across_limits():
    clock = Clock()
    limiter = RateLimiter(clock)
    key, provider = rpm(10), Limit("provider", "p", "requests", 1, 1)
    limiter.admit([key, provider])
    with pytest.raises(GatewayError):
        limiter.admit([key, provider])  # the provider refuses: the key is not charged
    for _ in range(9):
        limiter.admit([key])
    with pytest.raises(GatewayError):
        limiter.admit([key])


def test_keys_are_separate_and_zero_means_unlimited():
    limiter = RateLimiter(Clock())
    limiter.admit([rpm(1, "a")])
    limiter.admit([rpm(1, "b")])
    for _ in range(100):
        limiter.admit([rpm(0, "c")])


def test_a_request_larger_than_the_bucket_never_passes():
    limiter = RateLimiter(Clock())
    with pytest.raises(GatewayError) as refused:
        limiter.admit([Limit("key", "k", "tokens", 100, 101)])
    assert "Retry-After" not in refused.value.headers


def test_per_key_and_per_provider_limits_through_the_gateway(gateway, fake_openai):
    import httpx

    def ask(key: str) -> httpx.Response:
        return httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "gpt-4o-mini-2024-07-18",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 10,
            },
        )

    gateway.execute("UPDATE api_keys SET rpm = 3 WHERE user_id = 'demo'")
    gateway.refresh()
    began = time.monotonic()
    assert [ask(gateway.demo_key).status_code for _ in range(3)] == [200, 200, 200]
    start = gateway.balance()
    refused = ask(gateway.demo_key)
    elapsed = time.monotonic() - began
    assert refused.status_code == 429
    # One request refills every 20 s; the bucket has refilled for as long as the
    # four requests took (on a busy machine, seconds), and Retry-After rounds up.
    assert 20 - math.ceil(elapsed) <= int(refused.headers["retry-after"]) <= 20
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert fake_openai.calls == 3 and gateway.balance() == start
    # another key of another user is not limited by the first key's bucket...
    other = gateway.add_user("other", 10**9)
    assert ask(other).status_code == 200
    # ...but a provider's own token limit applies to every key: each request here
    # needs 3 + 3 + 1 prompt tokens + 10 of output = 17 tokens
    gateway.execute("UPDATE providers SET tpm = 40 WHERE id = 'openai'")
    gateway.refresh()
    charged = time.monotonic()
    assert [ask(other).status_code for _ in range(3)] == [200, 200, 429]
    # The admin view says how much of the limit is taken: two requests of 17 tokens,
    # less what has refilled since (40 per minute).
    shown = httpx.get(
        f"{gateway.base_url}/admin/providers/openai",
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    ).json()
    refilled = math.ceil((time.monotonic() - charged) * 40 / 60)
    assert shown["tpm"] == 40 and 34 - refilled <= shown["tpm_used"] <= 34
