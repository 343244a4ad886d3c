"""The console's session tokens and CSRF tokens, and the last hour's activity:
pure code, checked without a server."""

from __future__ import annotations

import base64

import orjson

from gateway.console.activity import Activity
from gateway.console.session import (
    COOKIE,
    cookie_token,
    csrf_matches,
    open_session,
    read_session,
)

KEYS = {"admin": "main-admin-key-0123456789", "alice": "alice-admin-key-0123456789"}
NOW = 1_800_000_000


def opened(name: str = "admin", lifetime: int = 3600) -> str:
    return open_session(name, KEYS[name], now=NOW, lifetime=lifetime, nonce=b"n" * 16).token


def test_a_session_names_its_admin_key_until_it_expires():
    token = opened("alice")
    session = read_session(token, KEYS, now=NOW + 10)
    assert session is not None and session.admin == "alice" and session.expires == NOW + 3600
    assert read_session(token, KEYS, now=NOW + 3600) is None  # expired
    assert KEYS["alice"] not in token


def test_a_forged_or_tampered_token_opens_nothing():
    token = opened()
    payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    for changed in ({**claims, "a": "alice"}, {**claims, "e": NOW + 10**9}):
        forged = base64.urlsafe_b64encode(orjson.dumps(changed)).rstrip(b"=").decode()
        assert read_session(f"{forged}.{signature}", KEYS, now=NOW) is None
    for bad in ("", "x", "a.b.c", "!!!.???", token + "x", "e30." + signature, "a" * 700):
        assert read_session(bad, KEYS, now=NOW) is None
    # Replacing the admin key ends its sessions.
    assert read_session(token, {"admin": "a-new-key-0123456789"}, now=NOW) is None
    assert read_session(token, {"alice": KEYS["alice"]}, now=NOW) is None


def test_the_csrf_token_belongs_to_one_session():
    first = read_session(opened(), KEYS, now=NOW)
    other = open_session("admin", KEYS["admin"], now=NOW, lifetime=60, nonce=b"m" * 16)
    assert first is not None
    assert csrf_matches(first, first.csrf)
    assert not csrf_matches(first, other.csrf)
    assert not csrf_matches(first, "")


def test_the_cookie_is_read_from_among_others():
    assert cookie_token(f'a=1; {COOKIE}=tok.en; b="x"') == "tok.en"
    assert cookie_token("a=1; b") == ""
    assert cookie_token("") == ""


def test_activity_keeps_an_hour_minute_by_minute():
    now = [NOW * 1.0]
    activity = Activity(minutes=3, clock=lambda: now[0])
    activity.add("gpt-4o", "openai", 200, 1_500)
    activity.add("gpt-4o", "openai", 502, 0)
    now[0] += 60
    activity.add("mock-1", "mock", 200, 7)
    report = activity.report()
    assert [m["requests"] for m in report["minutes"]] == [0, 2, 1]
    assert [m["errors"] for m in report["minutes"]] == [0, 1, 0]
    assert report["minutes"][1]["spend_usd"] == "0.000001500"
    assert [(m["name"], m["requests"], m["spend_nano"]) for m in report["models"]] == [
        ("gpt-4o", 2, 1_500),
        ("mock-1", 1, 7),
    ]
    now[0] += 180  # everything has left the window
    activity.add("mock-1", "mock", 200, 1)
    report = activity.report()
    assert [m["requests"] for m in report["minutes"]] == [0, 0, 1]
    assert [m["name"] for m in report["providers"]] == ["mock"]
