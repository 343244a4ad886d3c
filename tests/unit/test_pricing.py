"""Cost arithmetic in integer nano-USD: exact figures, which way each rounds,
figures no float could hold, and the hold never below the cost it stands for."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing import Prices, Usage, cost_nano, hold_nano, prices_for, usd
from config_store.schema import ModelConfig, PricingTier


def prices(
    inp: str = "0",
    out: str = "0",
    read: str | None = None,
    write: str | None = None,
    markup: str = "0",
) -> Prices:
    return Prices(
        Decimal(inp),
        Decimal(out),
        Decimal(read if read is not None else inp),
        Decimal(write if write is not None else inp),
        Decimal(markup),
    )


def test_a_million_tokens_cost_their_price_in_dollars():
    assert cost_nano(Usage(1_000_000, 0), prices("2.50")) == 2_500_000_000
    assert cost_nano(Usage(0, 1_000_000), prices(out="10")) == 10 * 10**9
    assert cost_nano(Usage(1, 1), prices("0.15", "0.60")) == 150 + 600


def test_the_markup_applies_to_the_whole_cost():
    assert cost_nano(Usage(1000, 500), prices("3", "15", markup="12.5")) == (
        (1000 * 3000 + 500 * 15_000) * 1125 // 1000
    )
    assert cost_nano(Usage(1000, 0), prices("3", markup="-100")) == 0


def test_cache_reads_and_writes_have_their_own_prices_within_the_prompt():
    p = prices("3", "15", read="0.30", write="3.75")
    usage = Usage(3093, 9, cache_read_tokens=2048, cache_write_tokens=1024)
    assert cost_nano(usage, p) == 21 * 3000 + 2048 * 300 + 1024 * 3750 + 9 * 15_000


def test_cached_figures_larger_than_the_prompt_are_capped_reads_first():
    p = prices("3", read="0.30", write="3.75")
    # 10 prompt tokens: 8 reads, then only 2 of the 5 writes fit, no plain input.
    assert cost_nano(Usage(10, 0, cache_read_tokens=8, cache_write_tokens=5), p) == (
        8 * 300 + 2 * 3750
    )
    assert cost_nano(Usage(10, 0, cache_read_tokens=50), p) == 10 * 300


@pytest.mark.parametrize(
    ("price", "markup", "nano"),
    [
        ("0.0005", "0", 1),  # 0.5 nano: half rounds up
        ("0.0004999", "0", 0),
        ("0.0015", "0", 2),  # 1.5 -> 2
        ("0.0025", "0", 3),  # 2.5 -> 3, not to even
        ("0.001", "50", 2),  # 1.5 after markup
        ("0.001", "49.9", 1),  # 1.499
    ],
)
def test_a_cost_rounds_half_up_once_at_the_end(price: str, markup: str, nano: int):
    assert cost_nano(Usage(1, 0), prices(price, markup=markup)) == nano


def test_rounding_happens_once_not_per_token_kind():
    # 0.4 + 0.4 nano: rounded each it would be 0, once it is 1.
    assert cost_nano(Usage(1, 1), prices("0.0004", "0.0004")) == 1


def test_big_figures_stay_exact():
    # Float arithmetic would lose the last digits of both.
    assert cost_nano(Usage(10**12, 0), prices("123456.789")) == 10**12 * 123_456_789
    huge = Usage(9_999_999, 9_999_999, cache_read_tokens=3_333_333)
    p = prices("0.000000001", "987654.321", read="0.1")
    # Output, then 3,333,333 reads at 100 nano, then 6,666,666 plain at 0.000001 nano
    # (6.67 nano, rounded up once).
    assert cost_nano(huge, p) == 9_999_999 * 987_654_321 + 333_333_300 + 7
    assert int(float(10**12) * 123456.789 * 1000) != 10**12 * 123_456_789


def test_a_hold_rounds_up():
    assert hold_nano(0, 1, prices(out="0.0001")) == 1  # 0.1 nano
    assert cost_nano(Usage(0, 1), prices(out="0.0001")) == 0


def test_a_hold_covers_the_prompt_margin_at_the_dearer_input_price_and_every_output_token():
    p = prices("3", "15", read="0.30", write="3.75", markup="10")
    # 1000 estimated -> 1000 + 100 + 32 held prompt tokens at 3.75 (writes are dearer).
    assert hold_nano(1000, 4 * 256, p) == (1132 * 3750 + 1024 * 15_000) * 11 // 10
    cheaper_writes = prices("3", "15", write="1")
    assert hold_nano(0, 0, cheaper_writes) == 32 * 3000


price = st.decimals("0", "1000", places=6).map(str)
settled_prices = st.builds(
    prices, inp=price, out=price, read=price, write=price,
    markup=st.decimals("0", "200", places=3).map(str),
)  # fmt: skip


@settings(max_examples=100, deadline=None, database=None)
@given(
    p=settled_prices,
    prompt=st.integers(0, 2_000_000),
    output=st.integers(0, 200_000),
    cached=st.integers(0, 2_000_000),
    written=st.integers(0, 2_000_000),
)
def test_a_hold_is_never_below_the_cost_of_what_it_allows(
    p: Prices, prompt: int, output: int, cached: int, written: int
):
    usage = Usage(prompt, output, min(cached, prompt), min(written, prompt - min(cached, prompt)))
    assert cost_nano(usage, p) <= hold_nano(prompt, output, p)


def test_a_hold_covers_cache_reads_dearer_than_input():
    p = prices("0", read="0.0005")
    assert cost_nano(Usage(1, 0, cache_read_tokens=1), p) <= hold_nano(1, 0, p)


@pytest.mark.parametrize(
    ("nano", "text"),
    [
        (0, "0.000000000"),
        (1, "0.000000001"),
        (1234, "0.000001234"),
        (10**9, "1.000000000"),
        (-1, "-0.000000001"),
        (-1_500_000_000, "-1.500000000"),
        (10**30 + 7, "1000000000000000000000.000000007"),
    ],
)
def test_usd_writes_nine_places_exactly(nano: int, text: str):
    assert usd(nano) == text


def test_prices_fall_back_to_the_input_price_and_take_the_tiers_markup():
    model = ModelConfig(
        "1", "m", "p", Decimal("3"), Decimal("15"), 200_000, 8192,
        cached_input_price_per_million=Decimal("0.30"),
    )  # fmt: skip
    assert prices_for(model, None) == prices("3", "15", read="0.30", write="3")
    tier = PricingTier("t", "Tier", Decimal("25"))
    assert prices_for(model, tier).markup_percent == Decimal("25")
