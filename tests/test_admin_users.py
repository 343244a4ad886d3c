"""Users, balances (only ever moved by ledger rows), keys with their limits, and
the usage, ledger and reconcile reports."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest

from tests.admin_client import Admin, error_of, fingerprint
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"
NANO = 10**9


def chat(gw: GatewayServer, key: str, model: str = MINI, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "a b c"}], **extra}
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=30,
    )


def new_user(admin: Admin, user_id: str, dollars: str | None = None) -> None:
    admin.ok(admin.post("/admin/users", {"id": user_id, "name": user_id.title()}), 201)
    if dollars:
        admin.ok(admin.post(f"/admin/users/{user_id}/topup", {"amount_usd": dollars}), 201)


def test_users_top_ups_and_adjustments(gateway: GatewayServer):
    admin = Admin(gateway)
    created = admin.ok(admin.post("/admin/users", {"id": "alice", "name": "Alice"}), 201)
    assert (created["tier_id"], created["balance_nano"]) == ("free", 0)
    topped = admin.ok(
        admin.post("/admin/users/alice/topup", {"amount_usd": "12.345678901", "reason": "card"}),
        201,
    )
    assert topped["balance_nano"] == 12_345_678_901
    adjusted = admin.ok(
        admin.post("/admin/users/alice/adjust", {"amount_usd": "-0.345678901", "reason": "refund"}),
        201,
    )
    assert adjusted["balance_usd"] == "12.000000000"
    assert gateway.balance("alice") == 12 * NANO
    rows = admin.ok(admin.get("/admin/ledger", user="alice"))["data"]
    assert [(r["kind"], r["amount_nano"], r["reason"]) for r in rows] == [
        ("topup", 12_345_678_901, "card"),
        ("adjust", -345_678_901, "refund"),
    ]
    users = admin.ok(admin.get("/admin/users"))["data"]
    assert {u["id"]: u["balance_nano"] for u in users}["alice"] == 12 * NANO
    assert admin.ok(admin.get("/admin/users/alice"))["balance_nano"] == 12 * NANO


def test_a_replayed_top_up_is_applied_once(gateway: GatewayServer):
    admin = Admin(gateway)
    new_user(admin, "bob")
    body = {"amount_usd": "5", "idempotency_key": "invoice-77"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: admin.post("/admin/users/bob/topup", body), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert gateway.balance("bob") == 5 * NANO
    assert admin.ok(admin.get("/admin/users/bob"))["balance_nano"] == 5 * NANO


BAD_CREDITS: list[tuple[str, dict[str, Any], str | None]] = [
    ("topup", {"amount_usd": "-5"}, "amount_usd"),
    ("topup", {"amount_usd": "0"}, "amount_usd"),
    ("topup", {"amount_usd": "five"}, "amount_usd"),
    ("topup", {"amount_usd": "1.0000000001"}, "amount_usd"),
    ("topup", {"amount_usd": True}, "amount_usd"),
    ("topup", {}, "amount_usd"),
    ("topup", {"amount_usd": "1", "memo": "x"}, "memo"),
    ("topup", {"amount_usd": "2000000"}, "amount_usd"),
    ("adjust", {"amount_usd": "-5"}, "reason"),
    ("adjust", {"amount_usd": "-5", "reason": " "}, "reason"),
]


@pytest.mark.parametrize(("kind", "body", "param"), BAD_CREDITS)
def test_bad_credits_change_no_balance(
    gateway: GatewayServer, kind: str, body: dict[str, Any], param: str | None
):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    response = admin.post(f"/admin/users/demo/{kind}", body)
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == param
    assert admin.post("/admin/users/nobody/topup", {"amount_usd": "1"}).status_code == 404
    assert fingerprint(gateway) == before


def test_bad_users_are_refused(gateway: GatewayServer):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    for body, param in [
        ({"id": "demo", "name": "Again"}, "id"),
        ({"id": "has space", "name": "x"}, "id"),
        ({"name": "no id"}, "id"),
        ({"id": "x", "tier_id": "gold"}, "tier_id"),
        ({"id": "x", "balance": 100}, "balance"),
        ({"id": 5}, "id"),
    ]:
        response = admin.post("/admin/users", body)
        assert response.status_code == 400, body
        assert error_of(response)["param"] == param
    assert fingerprint(gateway) == before


def test_keys_are_shown_once_and_their_limits_hold(gateway: GatewayServer, fake_openai: FakeOpenAI):
    admin = Admin(gateway)
    new_user(admin, "carol", "10")
    made = admin.ok(
        admin.post(
            "/admin/users/carol/keys",
            {"name": "ci", "allowed_models": [MINI, "auto"], "spend_cap_usd": "0.000020"},
        ),
        201,
    )
    key = made.pop("key")
    assert key.startswith(made["prefix"])
    [[stored_hash]] = gateway.query(
        "SELECT key_hash FROM api_keys WHERE prefix = ?", made["prefix"]
    )
    assert key not in stored_hash
    listed = admin.ok(admin.get("/admin/users/carol/keys"))["data"]
    assert listed == [made]
    assert "key" not in listed[0] and made["last_used_at"] is None

    first = chat(gateway, key, max_tokens=5)
    assert first.status_code == 200, first.text
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    [view] = admin.ok(admin.get("/admin/users/carol/keys"))["data"]
    assert view["spent_usd"] == f"{cost / NANO:.9f}"
    assert view["last_used_at"] is not None

    other = chat(gateway, key, model="gpt-4.1-nano-2025-04-14")
    assert other.status_code == 403
    assert error_of(other)["code"] == "model_not_allowed"
    # The cap ($0.00002) is less than the worst case of 20,000 output tokens.
    capped = chat(gateway, key, max_tokens=20_000)
    assert capped.status_code == 402
    assert error_of(capped)["code"] == "key_spend_cap_reached"

    raised = admin.ok(admin.patch(f"/admin/keys/{made['id']}", {"spend_cap_usd": None, "rpm": 1}))
    assert raised["spend_cap_usd"] is None and raised["rpm"] == 1
    assert chat(gateway, key, max_tokens=20_000).status_code == 200
    assert chat(gateway, key).status_code == 429

    revoked = admin.ok(admin.post(f"/admin/keys/{made['id']}/revoke"))
    assert revoked["revoked"] is True
    refused = chat(gateway, key)
    assert refused.status_code == 401
    assert admin.post(f"/admin/keys/{made['id']}/revoke").status_code == 409

    before = fingerprint(gateway)
    for body, param in [
        ({"allowed_models": ["no-such-model"]}, "allowed_models"),
        ({"allowed_models": "all"}, "allowed_models"),
        ({"rpm": -1}, "rpm"),
        ({"spend_cap_usd": "-1"}, "spend_cap_usd"),
        ({"owner": "x"}, "owner"),
    ]:
        response = admin.post("/admin/users/carol/keys", body)
        assert response.status_code == 400, body
        assert error_of(response)["param"] == param
    assert admin.patch("/admin/keys/0000000000000000", {"rpm": 1}).status_code == 404
    assert fingerprint(gateway) == before


def test_reconcile_is_clean_after_top_ups_requests_402s_and_failures(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    new_user(admin, "dave", "0.00005")
    key = admin.ok(admin.post("/admin/users/dave/keys", {"name": "k"}), 201)["key"]
    outcomes: list[int] = []
    fake_openai.fail_next = [(500, "boom"), (500, "boom")]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        requests = [pool.submit(chat, gateway, key, max_tokens=20) for _ in range(30)]
        requests += [pool.submit(chat, gateway, gateway.demo_key) for _ in range(10)]
        credits = [
            pool.submit(admin.post, "/admin/users/dave/topup", {"amount_usd": "0.00001"})
            for _ in range(5)
        ]
        outcomes = [r.result().status_code for r in requests]
        assert all(c.result().status_code == 201 for c in credits)
    assert {200, 402} <= set(outcomes)
    assert set(outcomes) <= {200, 402, 502}
    report = admin.ok(admin.get("/admin/reconcile"))
    assert report["clean"] is True, report
    assert report["mismatches"] == [] and report["open_holds_nano"] == {}
    # The balance moved by exactly the rows: top-ups minus charges.
    rows = admin.ok(admin.get("/admin/ledger", user="dave", limit=1000))["data"]
    assert gateway.balance("dave") == sum(r["amount_nano"] for r in rows)
    charged = [r for r in rows if r["kind"] == "charge"]
    assert len(charged) == outcomes[:30].count(200)
    assert all(r["amount_nano"] < 0 for r in charged)
    # Usage agrees with the ledger.
    usage = admin.ok(admin.get("/admin/usage", group_by="user,model"))["data"]
    dave = [u for u in usage if u["user"] == "dave"]
    assert dave == [
        {
            "user": "dave",
            "model": MINI,
            "requests": len(charged),
            "prompt_tokens": sum(r["prompt_tokens"] for r in charged),
            "completion_tokens": sum(r["completion_tokens"] for r in charged),
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_nano": -sum(r["amount_nano"] for r in charged),
            "cost_usd": f"{-sum(r['amount_nano'] for r in charged) / NANO:.9f}",
            "uncollected_nano": 0,
            "uncollected_usd": "0.000000000",
            "usage_anomalies": 0,
        }
    ]


def test_usage_groups_ranges_and_ledger_pages(gateway: GatewayServer):
    admin = Admin(gateway)
    for _ in range(3):
        assert chat(gateway, gateway.demo_key).status_code == 200
    by_day = admin.ok(admin.get("/admin/usage", group_by="day,provider"))["data"]
    assert len(by_day) == 1 and by_day[0]["requests"] == 3 and by_day[0]["provider"] == "openai"
    by_key = admin.ok(admin.get("/admin/usage", group_by="key"))["data"]
    assert by_key[0]["requests"] == 3
    future = admin.ok(admin.get("/admin/usage", **{"from": "2999-01-01T00:00:00Z"}))["data"]
    assert future == []
    assert admin.get("/admin/usage", group_by="colour").status_code == 400
    assert admin.get("/admin/usage", **{"from": "yesterday"}).status_code == 400

    first = admin.ok(admin.get("/admin/ledger", limit=2))
    assert len(first["data"]) == 2 and first["next"]
    second = admin.ok(admin.get("/admin/ledger", limit=2, after=first["next"]))
    third = admin.ok(admin.get("/admin/ledger", limit=2, after=second["next"]))
    assert (third["data"], third["next"]) == ([], None)
    ids = [r["request_id"] for r in first["data"] + second["data"]]
    assert len(ids) == len(set(ids)) == 4  # the opening top-up and three charges
    assert admin.get("/admin/ledger", limit=0).status_code == 400
    assert admin.get("/admin/ledger", kind="gift").status_code == 400
