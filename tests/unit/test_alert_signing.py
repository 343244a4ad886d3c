"""gateway.alerts.signing: a recorded vector, and every way a header can fail."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.alerts.signing import SIGNATURE_HEADER, sign, verify

SECRET = "whsec_test-secret"
NOW = 1_765_000_000
BODY = b'{"id":"budget:team:eng:daily:2026-12-07:80","event":"budget.threshold"}'
# Computed once and checked against hmac.new below: a change to the scheme shows here.
DIGEST = "d6f3dca6b85bb58ac4c5fde68c090465e491252684ebd031fa20727979c22c35"
HEADER = f"t={NOW},v1={DIGEST}"
FULLWIDTH_NOW = "".join(chr(0xFF10 + int(digit)) for digit in str(NOW))  # str.isdigit() is True


def test_the_header_name():
    assert SIGNATURE_HEADER == "x-gateway-signature"


def test_the_recorded_vector():
    independent = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256)
    assert independent.hexdigest() == DIGEST
    assert sign(SECRET, NOW, BODY) == HEADER


def test_a_fresh_signature_verifies():
    assert verify(SECRET, HEADER, BODY, now=NOW) is True
    assert verify(SECRET, HEADER, BODY, now=NOW + 300) is True
    assert verify(SECRET, HEADER, BODY, now=NOW - 300) is True
    assert verify(SECRET, HEADER, BODY, now=NOW + 10, tolerance=10) is True


def test_the_wrong_secret_fails():
    assert verify("whsec_other", HEADER, BODY, now=NOW) is False
    assert verify("", HEADER, BODY, now=NOW) is False


def test_a_tampered_body_fails():
    assert verify(SECRET, HEADER, BODY.replace(b"80", b"90"), now=NOW) is False
    assert verify(SECRET, HEADER, BODY + b" ", now=NOW) is False
    assert verify(SECRET, HEADER, b"", now=NOW) is False


def test_a_stale_or_future_timestamp_fails():
    assert verify(SECRET, HEADER, BODY, now=NOW + 301) is False
    assert verify(SECRET, HEADER, BODY, now=NOW - 301) is False
    assert verify(SECRET, HEADER, BODY, now=NOW + 11, tolerance=10) is False


def test_a_timestamp_changed_in_the_header_fails():
    assert verify(SECRET, f"t={NOW + 1},v1={DIGEST}", BODY, now=NOW) is False


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t{NOW},v1{DIGEST}",  # no '='
        f"t={NOW}",  # no v1
        f"t={NOW},",
        f"v1={DIGEST}",  # no t
        f"t=,v1={DIGEST}",
        f"t=abc,v1={DIGEST}",  # t not an integer
        f"t={NOW}.5,v1={DIGEST}",
        f"t=-{NOW},v1={DIGEST}",
        f"t=+{NOW},v1={DIGEST}",
        f"t={FULLWIDTH_NOW},v1={DIGEST}",  # digits, but not ASCII ones
        f"t=1{'0' * 40},v1={DIGEST}",  # absurdly large
        f"t={NOW},v1=",
        f"t={NOW},v1={DIGEST[:-1]}",  # short
        f"t={NOW},v1={DIGEST}0",  # long
        f"t={NOW},v1={DIGEST.upper()}",
        f"t={NOW},v1={'g' * 64}",  # not hex
        f"t={NOW},v1=é{DIGEST[1:]}",  # not ASCII
        f"v1={DIGEST},t={NOW}",  # not the order sign() writes
        f"t={NOW},v1={DIGEST},v1={DIGEST}",
        f"t={NOW},v0={DIGEST}",
        f" t={NOW},v1={DIGEST}",
        f"t={NOW}, v1={DIGEST}",
        f"{HEADER}\n",
        f"{HEADER},",
        f"t={NOW};v1={DIGEST}",
    ],
)
def test_a_malformed_header_fails_without_raising(header: str):
    assert verify(SECRET, header, BODY, now=NOW) is False
