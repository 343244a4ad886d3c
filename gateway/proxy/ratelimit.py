"""Requests-per-minute and tokens-per-minute limits, as token buckets in memory.

A limit of N per minute is a bucket that holds at most N and refills N/60 per
second, so a burst of N passes at once and then N per minute. A request is
admitted only if every bucket that applies to it (its API key's, its
provider's) can pay; then all of them are charged, else none is, and the
refusal says when the emptiest bucket will have enough (`Retry-After`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from config_store.schema import ApiKey, Provider
from gateway.errors import GatewayError

SECONDS_PER_MINUTE = 60.0
# Clock arithmetic in floats: a refill that lands a hair under a whole token counts as whole.
_EPSILON = 1e-9


@dataclass(slots=True)
class Bucket:
    per_minute: int
    level: float
    updated: float

    def refill(self, now: float) -> None:
        rate = self.per_minute / SECONDS_PER_MINUTE
        self.level = min(float(self.per_minute), self.level + (now - self.updated) * rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when it is now)."""
        if amount <= self.level + _EPSILON:
            return 0.0
        if amount > self.per_minute:
            return math.inf  # can never pass: larger than the whole bucket
        return (amount - self.level) * SECONDS_PER_MINUTE / self.per_minute


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit that applies to a request: e.g. ("key", prefix, "rpm", 60, 1)."""

    scope: str  # "key" | "provider"
    owner: str
    unit: str  # "requests" | "tokens"
    per_minute: int
    cost: int


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def admit(self, limits: Iterable[Limit]) -> None:
        """Charge every limit, or none and raise 429 with Retry-After."""
        now = self._clock()
        charged: list[tuple[Bucket, int]] = []
        worst: tuple[float, Limit] | None = None
        for limit in limits:
            if limit.per_minute <= 0:
                continue  # 0 means no limit
            key = (limit.scope, limit.owner, limit.unit)
            bucket = self._buckets.get(key)
            if bucket is None or bucket.per_minute != limit.per_minute:
                bucket = self._buckets[key] = Bucket(limit.per_minute, limit.per_minute, now)
            bucket.refill(now)
            wait = bucket.wait_for(limit.cost)
            if wait > 0 and (worst is None or wait > worst[0]):
                worst = (wait, limit)
            charged.append((bucket, limit.cost))
        if worst is not None:
            raise _refusal(*worst)
        for bucket, cost in charged:
            bucket.level -= cost

    def used(self, scope: str, owner: str, unit: str, per_minute: int) -> int:
        """How much of a limit is taken now (what the bucket lacks of full), 0 when
        nothing has been charged to it or its limit is not `per_minute` any more."""
        bucket = self._buckets.get((scope, owner, unit))
        if per_minute <= 0 or bucket is None or bucket.per_minute != per_minute:
            return 0
        bucket.refill(self._clock())
        return max(0, math.ceil(per_minute - bucket.level - _EPSILON))


def _refusal(wait: float, limit: Limit) -> GatewayError:
    who = "this API key" if limit.scope == "key" else f"the provider '{limit.owner}'"
    if math.isinf(wait):
        return GatewayError(
            429,
            f"This request needs {limit.cost} {limit.unit} but {who} allows "
            f"{limit.per_minute} {limit.unit} per minute.",
            type="rate_limit_exceeded",
            code="rate_limit_exceeded",
        )
    retry_after = max(1, math.ceil(wait))
    return GatewayError(
        429,
        f"Rate limit reached: {who} allows {limit.per_minute} {limit.unit} per minute. "
        f"Try again in {retry_after} s.",
        type="rate_limit_exceeded",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry_after)},
    )


def key_limits(key: ApiKey, tokens: int) -> list[Limit]:
    """An API key's two limits, for a request of `tokens` (prompt and output)."""
    return [
        Limit("key", key.key_hash, "requests", key.rpm, 1),
        Limit("key", key.key_hash, "tokens", key.tpm, tokens),
    ]


def provider_limits(provider: Provider, tokens: int) -> list[Limit]:
    """A provider's two limits, for a request of `tokens` (prompt and output)."""
    return [
        Limit("provider", provider.id, "requests", provider.rpm, 1),
        Limit("provider", provider.id, "tokens", provider.tpm, tokens),
    ]
