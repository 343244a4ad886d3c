"""The money rule, in one place: what a request is charged, given its hold.

    hold      = the pre-authorisation, taken before any provider is called
                (`billing.pricing.hold_nano`)
    reported  = the provider's usage, if it sent any: plausible token counts, or
                an `Anomaly` (kept raw, never billed)
    counted   = our own count: the prompt estimate and the output relayed
    billed    = reported if complete and plausible; on an early end, the
                provider's figures so far with our count of the output relayed;
                else counted
    charge    = min(cost(billed), hold)        never negative, never above the hold
    uncollected = cost(billed) - charge        recorded on the ledger row

A provider's usage is plausible when every figure is a JSON integer from 0 to
`MAX_PLAUSIBLE_TOKENS` and the cached part of the prompt is not larger than the
prompt. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from billing.pricing import Prices, Usage, cost_nano

# Five times the largest context window on offer today: a figure above it is not a
# count of tokens of one request, whatever the provider says.
MAX_PLAUSIBLE_TOKENS = 10_000_000
_RAW_LIMIT = 2000  # characters of an anomaly's raw usage kept on its ledger row

PROVIDER = "provider"  # the provider's final usage
COUNTED = "counted"  # no usage arrived: our own count
PARTIAL = "partial"  # ended early: the provider's figures so far, our count of the output
ANOMALY = "anomaly"  # the usage was not plausible: our own count


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Usage that is not a set of plausible token counts, kept as it came."""

    raw: str

    @classmethod
    def of(cls, raw: Any) -> Anomaly:
        try:
            text = orjson.dumps(raw).decode()
        except TypeError:
            text = repr(raw)
        return cls(text[:_RAW_LIMIT])


Reported = Usage | Anomaly | None


class Implausible(ValueError):
    """A usage figure that is not a plausible token count."""


def token_count(raw: Mapping[str, Any], name: str, *, required: bool = True) -> int:
    """One usage figure: a JSON integer from 0 to MAX_PLAUSIBLE_TOKENS. A missing
    figure is 0 when it is optional, and implausible when it is required."""
    value = raw.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise Implausible(name)
    if not 0 <= value <= MAX_PLAUSIBLE_TOKENS:
        raise Implausible(name)
    return value


def plausible(usage: Usage) -> Usage:
    """`usage` if its cached part fits in its prompt; else Implausible."""
    if usage.cache_read_tokens + usage.cache_write_tokens > usage.prompt_tokens:
        raise Implausible("cached tokens")
    return usage


@dataclass(frozen=True, slots=True)
class Charge:
    usage: Usage  # the tokens billed
    amount_nano: int  # taken from the balance: 0 <= amount <= hold
    uncollected_nano: int  # what `usage` costs beyond the hold
    source: str  # PROVIDER | COUNTED | PARTIAL | ANOMALY
    raw: str = ""  # an anomaly's usage as it came

    @property
    def cost_nano(self) -> int:
        """What the billed usage costs at the request's prices, collected or not."""
        return self.amount_nano + self.uncollected_nano


def billed_usage(reported: Reported, counted: Usage, *, complete: bool) -> tuple[Usage, str]:
    """The usage to bill and where it comes from. `complete` says the provider's
    final figures arrived; when they did not (the stream ended early), the
    provider's prompt figures stand and the output is the larger of its figure
    so far and our count of what was relayed."""
    if isinstance(reported, Anomaly):
        return counted, ANOMALY
    if reported is None:
        return counted, COUNTED
    if complete:
        return reported, PROVIDER
    prompt_side = (
        reported
        if reported.prompt_tokens
        else replace(reported, prompt_tokens=counted.prompt_tokens)
    )
    output = max(reported.completion_tokens, counted.completion_tokens)
    return replace(prompt_side, completion_tokens=output), PARTIAL


def charge(
    hold_nano: int, prices: Prices, reported: Reported, counted: Usage, *, complete: bool = True
) -> Charge:
    """What to take from the balance for a request that held `hold_nano`."""
    usage, source = billed_usage(reported, counted, complete=complete)
    cost = cost_nano(usage, prices)
    amount = max(0, min(cost, hold_nano))
    raw = reported.raw if isinstance(reported, Anomaly) else ""
    return Charge(usage, amount, max(0, cost - amount), source, raw)
