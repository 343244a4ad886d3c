"""Fallback down a model's chain, and cooldowns for providers that keep failing.

A request's chain is its model followed by the model's configured fallbacks
(see `gateway.proxy.chain`). `first_success` tries each in turn until one answers:
a retryable failure (connection, timeout, 429, 5xx: the provider's fault)
moves on to the next, after one more try of the same model when the provider
asked to wait briefly (`Retry-After`); any other failure is the client's and
is returned at once. It runs only before the first byte reaches the client:
streams are opened and their first chunk read inside an attempt.

A provider, or a model (named "model:<id>"), that fails `failures` times
within `window` seconds is skipped for `seconds`; a success clears its count.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.errors import GatewayError, unavailable

T = TypeVar("T")
A = TypeVar("A")


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    until: float = 0.0


class Cooldowns:
    def __init__(
        self,
        *,
        failures: int = 3,
        window: float = 60.0,
        seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._window = window
        self._seconds = seconds
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def cooling(self, provider: str) -> bool:
        record = self._records.get(provider)
        return record is not None and record.until > self._clock()

    def failed(self, provider: str) -> None:
        now = self._clock()
        record = self._records.setdefault(provider, _Record())
        record.failures.append(now)
        while record.failures and record.failures[0] <= now - self._window:
            record.failures.popleft()
        if len(record.failures) >= self._failures:
            record.until = now + self._seconds
            record.failures.clear()

    def succeeded(self, provider: str) -> None:
        record = self._records.get(provider)
        if record is not None:
            record.failures.clear()

    def status(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {"name": name, "seconds_left": round(record.until - now, 3)}
            for name, record in sorted(self._records.items())
            if record.until > now
        ]


def retry_after(error: GatewayError) -> float | None:
    raw = error.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


async def first_success(
    chain: list[T],
    names_of: Callable[[T], tuple[str, ...]],
    attempt: Callable[[T], Awaitable[A]],
    cooldowns: Cooldowns,
    *,
    max_retry_wait: float,
    check: Callable[[T], None] | None = None,
) -> tuple[T, A]:
    """The first candidate that answers, with its answer; else the last failure.
    `check` may refuse a candidate before it is tried (a rate limit of its own):
    then the next one is tried, and the refused provider is not blamed."""
    last: GatewayError | None = None
    for candidate in chain:
        names = names_of(candidate)  # its provider, and the model itself
        cooling = [name for name in names if cooldowns.cooling(name)]
        if cooling:
            last = last or unavailable(
                f"'{cooling[0]}' is cooling down after repeated failures.",
                code="provider_cooling_down",
            )
            continue
        if check is not None:
            try:
                check(candidate)
            except GatewayError as exc:
                last = exc
                continue
        for try_number in (1, 2):
            try:
                answer = await attempt(candidate)
            except GatewayError as exc:
                if not exc.retryable:
                    raise
                for name in names:
                    cooldowns.failed(name)
                last = exc
                wait = retry_after(exc)
                if try_number == 1 and wait is not None and wait <= max_retry_wait:
                    await asyncio.sleep(wait)
                    continue
                break
            for name in names:
                cooldowns.succeeded(name)
            return candidate, answer
    assert last is not None, "a chain has at least one candidate"
    raise last
