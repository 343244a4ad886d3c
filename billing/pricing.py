"""Exact cost arithmetic: usage x prices -> integer nano-USD.

Prices are USD per million tokens as `Decimal`. One token at P $/1M costs
P * 1000 nano-USD, so a cost is sum(tokens x price) x 1000 x (100 + markup)/100,
computed exactly and rounded half-up once. A hold is rounded up instead, so it
is never below the cost it stands for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal

from config_store.schema import ModelConfig, PricingTier

NANO_PER_USD = 10**9
_EXACT = Context(prec=60)
_NANO_PER_TOKEN_AT_ONE_PER_MILLION = Decimal(1000)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one request. `prompt_tokens` counts every input token, cached
    ones included (OpenAI's convention); `cache_read_tokens` and
    `cache_write_tokens` say how many of them were cache reads or writes."""

    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Prices:
    """The prices in force for one request, markup included: copied to its ledger row."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    markup_percent: Decimal
    point: str = ""  # the id of the price point these prices come from (see config_store.snapshot)

    def as_dict(self) -> dict[str, str]:
        return {
            "input_per_million": str(self.input),
            "output_per_million": str(self.output),
            "cache_read_per_million": str(self.cache_read),
            "cache_write_per_million": str(self.cache_write),
            "markup_percent": str(self.markup_percent),
        }


def prices_for(model: ModelConfig, tier: PricingTier | None, point: str = "") -> Prices:
    """Cache tokens are billed at their own prices when the model has them, else as input."""
    inp = model.input_price_per_million
    return Prices(
        input=inp,
        output=model.output_price_per_million,
        cache_read=model.cached_input_price_per_million
        if model.cached_input_price_per_million is not None
        else inp,
        cache_write=model.cache_write_price_per_million
        if model.cache_write_price_per_million is not None
        else inp,
        markup_percent=tier.markup_percent if tier is not None else Decimal(0),
        point=point,
    )


def _nano(token_price_sum: Decimal, prices: Prices) -> Decimal:
    scaled = _EXACT.multiply(token_price_sum, _NANO_PER_TOKEN_AT_ONE_PER_MILLION)
    return _EXACT.divide(_EXACT.multiply(scaled, _HUNDRED + prices.markup_percent), _HUNDRED)


@dataclass(frozen=True, slots=True)
class CostParts:
    """How a usage's cost is made, in exact (unrounded) nano-USD: each kind of
    token at its price, then the markup on their sum. `cost_nano` is their sum
    rounded half-up once."""

    input: Decimal  # prompt tokens that were neither cache reads nor writes
    cached_input: Decimal  # cache reads
    cache_write: Decimal
    output: Decimal
    markup: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.cached_input + self.cache_write + self.output + self.markup


@functools.lru_cache(maxsize=256)  # a request asks twice: for its charge, then its cost fields
def cost_parts(usage: Usage, prices: Prices) -> CostParts:
    cached = min(usage.cache_read_tokens + usage.cache_write_tokens, usage.prompt_tokens)
    reads = min(usage.cache_read_tokens, cached)

    def at(tokens: int, price: Decimal) -> Decimal:
        return _EXACT.multiply(
            _EXACT.multiply(Decimal(tokens), price), _NANO_PER_TOKEN_AT_ONE_PER_MILLION
        )

    parts = (
        at(usage.prompt_tokens - cached, prices.input),
        at(reads, prices.cache_read),
        at(cached - reads, prices.cache_write),
        at(usage.completion_tokens, prices.output),
    )
    base = _EXACT.add(_EXACT.add(parts[0], parts[1]), _EXACT.add(parts[2], parts[3]))
    markup = _EXACT.divide(_EXACT.multiply(base, prices.markup_percent), _HUNDRED)
    return CostParts(*parts, markup=markup)


def cost_nano(usage: Usage, prices: Prices) -> int:
    return int(cost_parts(usage, prices).total.to_integral_value(rounding=ROUND_HALF_UP))


# The prompt is estimated with our tokenizer; the provider counts with its own and
# frames messages, tools and images its own way. The hold allows for the difference.
HOLD_PROMPT_MARGIN_PERCENT = 10
HOLD_PROMPT_MARGIN_TOKENS = 32


def held_prompt_tokens(prompt_estimate: int) -> int:
    """The prompt tokens a hold covers: the estimate plus the margin, rounded up."""
    margin = -(-prompt_estimate * HOLD_PROMPT_MARGIN_PERCENT // 100)
    return prompt_estimate + margin + HOLD_PROMPT_MARGIN_TOKENS


@functools.lru_cache(maxsize=4096)  # asked at can-pay and for each candidate of the chain
def hold_nano(prompt_estimate: int, output_tokens: int, prices: Prices) -> int:
    """The worst case: the prompt estimate with its margin, every token at the
    dearest of the prompt's prices (input, cache write, cache read: nothing
    keeps an operator from pricing a cache read above input), and every output
    token allowed (the output cap times the number of choices asked for)."""
    input_price = max(prices.input, prices.cache_write, prices.cache_read)
    prompt = Decimal(held_prompt_tokens(prompt_estimate))
    total = prompt * input_price + Decimal(output_tokens) * prices.output
    return int(_nano(total, prices).to_integral_value(rounding=ROUND_CEILING))


def usd(nano: int) -> str:
    """Integer nano-USD as a decimal USD string with nine places: 1234 -> "0.000001234"."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO_PER_USD)
    return f"{sign}{whole}.{frac:09d}"
