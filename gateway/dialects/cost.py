"""A charge as the client sees it in a body's `usage`: `cost` as a JSON number
written with its exact decimal digits (never through a binary float), and
`cost_details`, how that cost was made.

    cost          what was taken from the balance, in USD
    cost_details  input, cached_input, cache_write, output: each kind of token
                  at its price; markup: the tier's markup on their sum. Exact
                  USD, unrounded; `cost` is their sum rounded half-up to the
                  nano-USD, and never above the request's hold: what the hold
                  could not cover is `uncollected` (only when there is some).
                  price_point: the id of the price point billed.
"""

from __future__ import annotations

import functools
from decimal import Context, Decimal
from typing import Any

import orjson

from billing.pricing import Prices, Usage, cost_parts, usd
from billing.settlement import Charge

_EXACT = Context(prec=100)  # more digits than any cost has: nothing is rounded


def usd_number(nano: int) -> orjson.Fragment:
    """Integer nano-USD as a JSON number with nine decimal places: 1234 -> 0.000001234."""
    return orjson.Fragment(usd(nano).encode())


def exact_usd_number(nano: Decimal) -> orjson.Fragment:
    """Exact nano-USD (a Decimal, maybe fractional) as a JSON number in USD, with
    every digit it has and no exponent."""
    text = format(nano.scaleb(-9, _EXACT).normalize(_EXACT), "f")
    return orjson.Fragment(text.encode())


def cost_fields(charge: Charge, prices: Prices) -> dict[str, Any]:
    """`cost` and `cost_details`, to be merged into a `usage` object."""
    details: dict[str, Any] = dict(_parts_in_usd(charge.usage, prices))
    if charge.uncollected_nano:
        details["uncollected"] = usd_number(charge.uncollected_nano)
    if prices.point:
        details["price_point"] = prices.point
    return {"cost": usd_number(charge.amount_nano), "cost_details": details}


@functools.lru_cache(maxsize=256)  # few distinct usages and prices: the same again and again
def _parts_in_usd(usage: Usage, prices: Prices) -> tuple[tuple[str, orjson.Fragment], ...]:
    parts = cost_parts(usage, prices)
    return (
        ("input", exact_usd_number(parts.input)),
        ("cached_input", exact_usd_number(parts.cached_input)),
        ("cache_write", exact_usd_number(parts.cache_write)),
        ("output", exact_usd_number(parts.output)),
        ("markup", exact_usd_number(parts.markup)),
    )
