"""What the gateway served lately, minute by minute: requests, errors and spend
over the last hour, in total and by model and provider. Kept in memory by each
instance (it counts its own requests) for the console's overview; /metrics has
the same counts since start, for Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from billing.pricing import usd

MINUTE = 60


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    errors: int = 0  # answered 4xx or 5xx
    server_errors: int = 0  # answered 5xx
    spend_nano: int = 0

    def add(self, status: int, cost_nano: int) -> None:
        self.requests += 1
        self.errors += status >= 400
        self.server_errors += status >= 500
        self.spend_nano += cost_nano

    def merge(self, other: _Tally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.server_errors += other.server_errors
        self.spend_nano += other.spend_nano

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "server_errors": self.server_errors,
            "spend_nano": self.spend_nano,
            "spend_usd": usd(self.spend_nano),
        }


@dataclass(slots=True)
class _Minute:
    total: _Tally = field(default_factory=_Tally)
    models: dict[str, _Tally] = field(default_factory=dict)
    providers: dict[str, _Tally] = field(default_factory=dict)


class Activity:
    def __init__(self, minutes: int = 60, clock: Callable[[], float] = time.time) -> None:
        self._span = minutes
        self._clock = clock
        self._minutes: dict[int, _Minute] = {}

    def add(self, model: str, provider: str, status: int, cost_nano: int) -> None:
        """One finished request; `model` and `provider` are bounded names."""
        now = int(self._clock()) // MINUTE
        minute = self._minutes.get(now)
        if minute is None:
            self._minutes = {m: b for m, b in self._minutes.items() if m > now - self._span}
            minute = self._minutes[now] = _Minute()
        minute.total.add(status, cost_nano)
        if model:
            minute.models.setdefault(model, _Tally()).add(status, cost_nano)
        if provider:
            minute.providers.setdefault(provider, _Tally()).add(status, cost_nano)

    def report(self) -> dict[str, Any]:
        """Every minute of the span, oldest first (empty ones as zeros), and the
        span's totals by model and by provider, busiest first."""
        now = int(self._clock()) // MINUTE
        series: list[dict[str, Any]] = []
        models: dict[str, _Tally] = {}
        providers: dict[str, _Tally] = {}
        for at in range(now - self._span + 1, now + 1):
            minute = self._minutes.get(at)
            tally = minute.total if minute else _Tally()
            series.append({"minute": at * MINUTE, **tally.to_json()})
            if minute is None:
                continue
            for name, part in minute.models.items():
                models.setdefault(name, _Tally()).merge(part)
            for name, part in minute.providers.items():
                providers.setdefault(name, _Tally()).merge(part)
        return {
            "span_minutes": self._span,
            "minutes": series,
            "models": _ranked(models),
            "providers": _ranked(providers),
        }


def _ranked(tallies: dict[str, _Tally]) -> list[dict[str, Any]]:
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].requests, item[0]))
    return [{"name": name, **tally.to_json()} for name, tally in ordered]
