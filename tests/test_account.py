"""GET /v1/account: a user key sees its own balance, open holds, spend and limits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx

from gateway.api.account import period_starts
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text
from tests.test_concurrency import worst_case_hold

MINI = "gpt-4o-mini-2024-07-18"
START = 5 * 10**9
CAP = 2 * 10**9


def account(gw: GatewayServer, key: str) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/v1/account", headers={"Authorization": f"Bearer {key}"})


def chat(gw: GatewayServer, key: str, content: str, max_tokens: int = 64) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": content}],
              "max_tokens": max_tokens},
        timeout=60,
    )  # fmt: skip


def test_the_account_shows_balance_spend_and_what_the_key_cap_leaves(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    key = gateway.add_user("ada", START)
    gateway.execute("UPDATE api_keys SET spend_cap_nano = ?, rpm = 600 WHERE user_id = 'ada'", CAP)
    gateway.refresh()
    assert chat(gateway, key, "hello there").status_code == 200
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60", markup_percent="10"
    )

    answer = account(gateway, key)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    day, month = period_starts(datetime.now(UTC))
    assert body == {
        "object": "account",
        "user": {"id": "ada", "name": "ada", "tier_id": "free"},
        "balance_usd": usd_text(START - cost),
        "held_usd": usd_text(0),
        "available_usd": usd_text(START - cost),
        "spend": {
            "today_usd": usd_text(cost),
            "this_month_usd": usd_text(cost),
            "day_started_at": day.isoformat().replace("+00:00", "Z"),
            "month_started_at": month.isoformat().replace("+00:00", "Z"),
        },
        "key": {
            "id": body["key"]["id"],
            "prefix": key[:10],
            "name": "test",
            "rpm": 600,
            "tpm": 0,
            "allowed_models": [],
            "spend_cap_usd": usd_text(CAP),
            "spent_usd": usd_text(cost),
            "held_usd": usd_text(0),
            "spend_left_usd": usd_text(CAP - cost),
        },
        "team": None,
        "budgets": [  # the key's spend cap is a lifetime budget
            {
                "id": f"{body['key']['id']}:spend_cap",
                "scope": "key",
                "subject": body["key"]["id"],
                "window": "lifetime",
                "limit_usd": usd_text(CAP),
                "spent_usd": usd_text(cost),
                "held_usd": usd_text(0),
                "remaining_usd": usd_text(CAP - cost),
                "window_started_at": None,
                "resets_at": None,
            }
        ],
    }
    assert answer.headers["content-type"] == "application/json"


def test_an_open_hold_shows_until_its_request_settles(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    key = gateway.add_user("bob", START)
    fake_openai.held = True
    done: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: done.update(r=chat(gateway, key, "wait for me")))
    thread.start()
    try:
        for _ in range(3000):  # bounds the wait only: until the request waits on the provider
            if fake_openai.calls:
                break
            time.sleep(0.01)
        during = account(gateway, key).json()
    finally:
        fake_openai.held = False
        thread.join()
    hold = worst_case_hold("wait for me", 64)
    assert during["held_usd"] == usd_text(hold)
    assert during["key"]["held_usd"] is None  # a key's holds are counted against a cap only
    assert during["available_usd"] == usd_text(START - hold)
    assert during["key"]["spend_left_usd"] is None  # no cap
    after = account(gateway, key).json()
    assert after["held_usd"] == usd_text(0)
    assert done["r"].status_code == 200


def test_the_account_needs_a_valid_user_key(gateway: GatewayServer):
    for headers in ({}, {"Authorization": "Bearer gw-not-a-key"}, {"Authorization": "Bearer "
                    + gateway.admin_key}):  # fmt: skip
        answer = httpx.get(f"{gateway.base_url}/v1/account", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_api_key"


def test_the_periods_start_at_midnight_and_on_the_first_in_utc():
    moment = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert period_starts(moment) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )
