"""The cost fields' numbers: exact digits, never an exponent, never a float."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from billing.pricing import Prices, Usage
from billing.settlement import PROVIDER, Charge
from gateway.dialects.cost import cost_fields, exact_usd_number, usd_number


@pytest.mark.parametrize(
    ("nano", "text"),
    [(0, b"0.000000000"), (1, b"0.000000001"), (2805, b"0.000002805"),
     (123_456_789_012, b"123.456789012"), (10**18, b"1000000000.000000000")],
)  # fmt: skip
def test_a_charge_is_written_with_nine_places(nano: int, text: bytes):
    assert orjson.dumps(usd_number(nano)) == text


@pytest.mark.parametrize(
    ("nano", "text"),
    [("0", b"0"), ("0.5", b"0.0000000005"), ("1E+3", b"0.000001"), ("1500000000", b"1.5"),
     ("0.000000000000000000000001", b"0.000000000000000000000000000000001"),
     ("123456789012345678901234567890", b"123456789012345678901.23456789")],
)  # fmt: skip
def test_an_exact_part_keeps_every_digit_and_no_exponent(nano: str, text: bytes):
    assert orjson.dumps(exact_usd_number(Decimal(nano))) == text


def test_an_uncollected_part_and_the_price_point_are_named():
    prices = Prices(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"), Decimal(0), "m@t")
    charge = Charge(Usage(1000, 100, cache_read_tokens=400), 4000, 2020, PROVIDER)
    fields = orjson.loads(orjson.dumps(cost_fields(charge, prices)))
    assert fields == {
        "cost": 0.000004,
        "cost_details": {
            "input": 0.0018,  # 600 x 3 / 1M
            "cached_input": 0.00012,  # 400 x 0.3 / 1M
            "cache_write": 0,
            "output": 0.0015,  # 100 x 15 / 1M
            "markup": 0,
            "uncollected": 0.00000202,
            "price_point": "m@t",
        },
    }
