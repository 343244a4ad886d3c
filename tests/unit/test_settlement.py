"""The money rule as a pure function: what is charged against a hold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.pricing import Prices, Usage, cost_nano, held_prompt_tokens, hold_nano
from billing.settlement import (
    ANOMALY,
    COUNTED,
    MAX_PLAUSIBLE_TOKENS,
    PARTIAL,
    PROVIDER,
    Anomaly,
    Implausible,
    charge,
    token_count,
)

PRICES = Prices(
    input=Decimal("2.50"),
    output=Decimal("10"),
    cache_read=Decimal("1.25"),
    cache_write=Decimal("3.125"),
    markup_percent=Decimal("10"),
)
COUNTED_USAGE = Usage(prompt_tokens=100, completion_tokens=40)


def test_complete_plausible_usage_is_billed_as_reported():
    reported = Usage(120, 30, cache_read_tokens=100)
    billed = charge(10**9, PRICES, reported, COUNTED_USAGE)
    # 20 plain input at 2.50, 100 cache reads at 1.25, 30 output at 10, per million, +10 %
    assert billed.amount_nano == (20 * 2500 + 100 * 1250 + 30 * 10_000) * 11 // 10
    assert (billed.usage, billed.source, billed.uncollected_nano) == (reported, PROVIDER, 0)


def test_a_charge_never_exceeds_its_hold():
    reported = Usage(1_000_000, 0)
    billed = charge(12_345, PRICES, reported, COUNTED_USAGE)
    assert billed.amount_nano == 12_345
    assert billed.uncollected_nano == cost_nano(reported, PRICES) - 12_345
    assert billed.cost_nano == cost_nano(reported, PRICES)


def test_a_charge_is_never_negative():
    assert charge(-5, PRICES, Usage(10, 10), COUNTED_USAGE).amount_nano == 0
    assert charge(0, PRICES, None, COUNTED_USAGE).amount_nano == 0


def test_no_usage_bills_our_count_and_an_anomaly_bills_our_count_and_keeps_the_raw():
    assert charge(10**9, PRICES, None, COUNTED_USAGE).source == COUNTED
    raw = {"prompt_tokens": -5}
    billed = charge(10**9, PRICES, Anomaly.of(raw), COUNTED_USAGE)
    assert (billed.usage, billed.source, billed.raw) == (
        COUNTED_USAGE,
        ANOMALY,
        '{"prompt_tokens":-5}',
    )


def test_an_early_end_keeps_the_providers_prompt_figures_and_the_larger_output():
    started = Usage(3012, 1, cache_read_tokens=3000)
    billed = charge(10**9, PRICES, started, COUNTED_USAGE, complete=False)
    assert billed.usage == Usage(3012, 40, cache_read_tokens=3000)
    assert billed.source == PARTIAL
    further = Usage(3012, 55, cache_read_tokens=3000)  # Gemini's cumulative figure
    assert (
        charge(10**9, PRICES, further, COUNTED_USAGE, complete=False).usage.completion_tokens == 55
    )
    no_prompt = Usage(0, 7)
    assert charge(10**9, PRICES, no_prompt, COUNTED_USAGE, complete=False).usage == Usage(100, 40)


@pytest.mark.parametrize(
    "value", [-1, 1.0, 1e30, "3", True, None, MAX_PLAUSIBLE_TOKENS + 1, [3], {"n": 3}]
)
def test_a_usage_figure_is_a_json_integer_within_bounds(value: object):
    with pytest.raises(Implausible):
        token_count({"n": value}, "n")


def test_optional_figures_read_as_zero_and_bounds_are_inclusive():
    assert token_count({}, "n", required=False) == 0
    assert token_count({"n": MAX_PLAUSIBLE_TOKENS}, "n") == MAX_PLAUSIBLE_TOKENS
    assert token_count({"n": 0}, "n") == 0


def test_the_hold_has_a_prompt_margin_and_covers_every_choice():
    assert held_prompt_tokens(0) == 32
    assert held_prompt_tokens(100) == 100 + 10 + 32
    assert held_prompt_tokens(101) == 101 + 11 + 32  # 10 % rounded up
    one = hold_nano(100, 50, PRICES)
    four = hold_nano(100, 4 * 50, PRICES)
    # The dearer input price (cache writes here) for the prompt, output at 10.
    assert one == -(-(142 * 3125 + 50 * 10_000) * 11 // 10)
    assert four - one == 150 * 10_000 * 11 // 10
