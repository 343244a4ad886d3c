"""`first_success` down a chain of plain strings, and `Cooldowns` on a clock the
test moves: which candidate answers, which failure comes out, who is blamed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.errors import GatewayError, bad_request, upstream_error
from gateway.proxy import fallback
from gateway.proxy.fallback import Cooldowns, first_success


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing(status: int = 502, retry_after: str | None = None) -> GatewayError:
    if status == 429:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return GatewayError(429, "slow down", code="rate_limit_exceeded", headers=headers,
                            retryable=True)  # fmt: skip
    return upstream_error(f"failed {status}")


Script = dict[str, list[GatewayError | str]]


def scripted(script: Script, tried: list[str]) -> Callable[[str], Awaitable[str]]:
    """Each candidate's outcomes in turn: an error to raise or an answer."""

    async def attempt(candidate: str) -> str:
        tried.append(candidate)
        outcome = script[candidate].pop(0)
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    return attempt


def names(candidate: str) -> tuple[str, ...]:
    return (f"provider-{candidate}", f"model:{candidate}")


async def run(
    chain: list[str],
    script: Script,
    cooldowns: Cooldowns | None = None,
    *,
    max_retry_wait: float = 5.0,
    check: Callable[[str], None] | None = None,
) -> tuple[tuple[str, str], list[str]]:
    tried: list[str] = []
    found = await first_success(
        chain,
        names,
        scripted(script, tried),
        cooldowns or Cooldowns(clock=Clock()),
        max_retry_wait=max_retry_wait,
        check=check,
    )
    return found, tried


async def test_the_first_candidate_that_answers_wins():
    found, tried = await run(["a", "b"], {"a": ["A"], "b": ["B"]})
    assert (found, tried) == (("a", "A"), ["a"])


async def test_a_retryable_failure_moves_on_and_blames_the_provider_and_the_model():
    cooldowns = Cooldowns(failures=1, clock=Clock())
    found, tried = await run(["a", "b"], {"a": [failing(500)], "b": ["B"]}, cooldowns)
    assert (found, tried) == (("b", "B"), ["a", "b"])
    assert [s["name"] for s in cooldowns.status()] == ["model:a", "provider-a"]


async def test_the_clients_failure_is_raised_at_once_and_blames_nobody():
    refused = bad_request("no such parameter")
    cooldowns = Cooldowns(failures=1, clock=Clock())
    with pytest.raises(GatewayError) as caught:
        await run(["a", "b"], {"a": [refused], "b": ["B"]}, cooldowns)
    assert caught.value is refused
    assert cooldowns.status() == []


async def test_when_every_candidate_fails_the_last_failure_comes_out():
    last = failing(503)
    with pytest.raises(GatewayError) as caught:
        await run(["a", "b", "c"], {"a": [failing()], "b": [failing()], "c": [last]})
    assert caught.value is last


async def test_a_short_retry_after_is_waited_for_once_then_the_next_is_tried(
    monkeypatch: pytest.MonkeyPatch,
):
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(fallback.asyncio, "sleep", sleep)
    limited = [failing(429, "2"), failing(429, "2")]
    found, tried = await run(["a", "b"], {"a": limited, "b": ["B"]})
    assert (found, tried, waited) == (("b", "B"), ["a", "a", "b"], [2.0])
    found, tried = await run(["a"], {"a": [failing(429, "0.5"), "A"]})
    assert (found, tried, waited) == (("a", "A"), ["a", "a"], [2.0, 0.5])


@pytest.mark.parametrize("retry_after", [None, "6", "soon", "-"])
async def test_no_second_try_when_the_wait_is_long_or_unreadable(retry_after: str | None):
    found, tried = await run(["a", "b"], {"a": [failing(429, retry_after)], "b": ["B"]})
    assert (found, tried) == (("b", "B"), ["a", "b"])


async def test_a_cooling_candidate_is_skipped_and_named_when_nothing_else_fails():
    clock = Clock()
    cooldowns = Cooldowns(failures=1, seconds=30, clock=clock)
    cooldowns.failed("provider-a")
    found, tried = await run(["a", "b"], {"a": ["A"], "b": ["B"]}, cooldowns)
    assert (found, tried) == (("b", "B"), ["b"])
    with pytest.raises(GatewayError) as caught:
        await run(["a"], {"a": ["A"]}, cooldowns)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        503,
        "provider_cooling_down",
        "'provider-a' is cooling down after repeated failures.",
    )
    later = failing(500)
    with pytest.raises(GatewayError) as caught:
        await run(["a", "b"], {"a": ["A"], "b": [later]}, cooldowns)
    assert caught.value is later  # a real failure says more than a cooldown
    clock.now += 30
    found, tried = await run(["a"], {"a": ["A"]}, cooldowns)
    assert (found, tried) == (("a", "A"), ["a"])


async def test_a_candidate_refused_by_check_is_passed_over_without_blame():
    cooldowns = Cooldowns(failures=1, clock=Clock())
    limit = GatewayError(429, "your rate limit", retryable=True)

    def check(candidate: str) -> None:
        if candidate == "a":
            raise limit

    found, tried = await run(["a", "b"], {"a": ["A"], "b": ["B"]}, cooldowns, check=check)
    assert (found, tried) == (("b", "B"), ["b"])
    assert cooldowns.status() == []
    with pytest.raises(GatewayError) as caught:
        await run(["a"], {"a": ["A"]}, cooldowns, check=check)
    assert caught.value is limit


async def test_repeated_failures_put_a_provider_in_cooldown_and_a_success_clears_the_count():
    clock = Clock()
    cooldowns = Cooldowns(failures=2, window=60, seconds=30, clock=clock)
    await run(["a", "b"], {"a": [failing()], "b": ["B"]}, cooldowns)
    await run(["a"], {"a": ["A"]}, cooldowns)  # clears a's count
    await run(["a", "b"], {"a": [failing()], "b": ["B"]}, cooldowns)
    assert not cooldowns.cooling("provider-a")
    await run(["a", "b"], {"a": [failing()], "b": ["B"]}, cooldowns)
    assert cooldowns.cooling("provider-a") and cooldowns.cooling("model:a")


# --- Cooldowns -----------------------------------------------------------------------


def test_the_nth_failure_within_the_window_starts_the_cooldown():
    clock = Clock()
    cooldowns = Cooldowns(failures=3, window=60, seconds=30, clock=clock)
    cooldowns.failed("p")
    clock.now += 10
    cooldowns.failed("p")
    assert not cooldowns.cooling("p")
    clock.now += 10
    cooldowns.failed("p")
    assert cooldowns.cooling("p") and not cooldowns.cooling("q")
    assert cooldowns.status() == [{"name": "p", "seconds_left": 30.0}]
    clock.now += 29.5
    assert cooldowns.status() == [{"name": "p", "seconds_left": 0.5}]
    clock.now = 1020 + 30  # the end is exclusive
    assert not cooldowns.cooling("p") and cooldowns.status() == []


def test_failures_older_than_the_window_do_not_count():
    clock = Clock()
    cooldowns = Cooldowns(failures=3, window=60, seconds=30, clock=clock)
    cooldowns.failed("p")  # at 1000
    clock.now = 1030
    cooldowns.failed("p")
    clock.now = 1060  # the first one is exactly a window old: it no longer counts
    cooldowns.failed("p")
    assert not cooldowns.cooling("p")
    clock.now = 1061
    cooldowns.failed("p")  # 1030, 1060, 1061
    assert cooldowns.cooling("p")


def test_a_cooldown_starts_the_count_afresh():
    clock = Clock()
    cooldowns = Cooldowns(failures=2, window=60, seconds=30, clock=clock)
    cooldowns.failed("p")
    cooldowns.failed("p")
    clock.now += 30
    cooldowns.failed("p")
    assert not cooldowns.cooling("p")


def test_a_success_clears_the_count_but_not_a_running_cooldown():
    clock = Clock()
    cooldowns = Cooldowns(failures=2, clock=clock)
    cooldowns.failed("p")
    cooldowns.succeeded("p")
    cooldowns.failed("p")
    assert not cooldowns.cooling("p")
    cooldowns.failed("p")
    cooldowns.succeeded("p")
    assert cooldowns.cooling("p")
    cooldowns.succeeded("never-failed")
    assert [s["name"] for s in cooldowns.status()] == ["p"]


def test_status_lists_only_what_is_cooling_by_name():
    clock = Clock()
    cooldowns = Cooldowns(failures=1, seconds=10, clock=clock)
    for name in ("zeta", "alpha"):
        cooldowns.failed(name)
        clock.now += 1
    assert cooldowns.status() == [
        {"name": "alpha", "seconds_left": 9.0},
        {"name": "zeta", "seconds_left": 8.0},
    ]
