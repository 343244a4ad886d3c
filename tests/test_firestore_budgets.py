"""Budgets, team wallets and alert claims on Firestore (Google's emulator), with
two instances sharing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from config_store.firestore_client import client
from gateway.alerts.firestore_log import FirestoreDeliveryLog
from gateway.alerts.webhook import Alert
from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import documents, firestore_env, new_project
from tests.harness import GatewayServer, usd_text
from tests.test_firestore_gateway import MINI


@pytest.fixture
def project() -> str:
    return new_project()


def ask(gw: GatewayServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": MINI,
            "messages": [{"role": "user", "content": "one two"}],
            "max_tokens": 10,
        },
        timeout=60,
    )


def test_two_instances_share_a_team_wallet_and_its_budget(
    make_gateway: Callable[..., GatewayServer],
    firestore_host: str,
    project: str,
    fake_openai: FakeOpenAI,
):
    a = make_gateway(env=firestore_env(firestore_host, project))
    b = make_gateway(env=firestore_env(firestore_host, project), do_seed=False)
    admin_a = Admin(a)
    keys = {}
    for user in ("ann", "ben"):
        admin_a.ok(admin_a.post("/admin/users", {"id": user, "name": user}), 201)
        keys[user] = admin_a.ok(admin_a.post(f"/admin/users/{user}/keys", {}), 201)["key"]
    admin_a.ok(
        admin_a.post("/admin/teams", {"id": "eng", "members": ["ann", "ben"], "wallet": True}), 201
    )
    admin_a.ok(admin_a.post("/admin/teams/eng/topup", {"amount_usd": "1"}), 201)
    # One request, to learn what each costs; then a daily budget of ten of them.
    assert ask(a, keys["ann"]).status_code == 200
    admin_a.ok(admin_a.get("/admin/reconcile"))  # ships A's outbox
    [row] = [
        r for r in documents(firestore_host, project, "ledger").values() if r["kind"] == "charge"
    ]
    assert (row["team_id"], row["paid_by"], row["user_id"]) == ("eng", "team", "ann")
    cost = -int(row["amount_nano"])
    budget = {
        "id": "eng-day",
        "scope": "team",
        "subject": "eng",
        "window": "daily",
        "limit_usd": usd_text(10 * cost),
    }
    admin_a.ok(admin_a.post("/admin/budgets", budget), 201)
    for gw in (a, b):
        gw.refresh()

    # Members of the team on both instances, each instance told of the other's charges
    # (reconcile ships its outbox and re-reads balances and budget windows).
    served: list[str] = []
    refused: list[dict[str, Any]] = []
    for turn in range(24):
        gw, user = (a, "ann") if turn % 2 else (b, "ben")
        answer = ask(gw, keys[user])
        if answer.status_code == 200:
            served.append(user)
        else:
            assert answer.status_code == 402, answer.text
            refused.append(answer.json()["error"])
        for each in (a, b):
            Admin(each).ok(Admin(each).get("/admin/reconcile"))
    assert refused and {e["code"] for e in refused} == {"budget_exceeded"}
    spent = [Admin(gw).ok(Admin(gw).get("/admin/budgets/eng-day"))["state"] for gw in (a, b)]
    assert spent[0] == spent[1]
    total = cost * (1 + len(served))
    assert int(spent[0]["spent_usd"].replace(".", "")) == total <= 10 * cost
    assert set(served) == {"ann", "ben"}
    wallet = documents(firestore_host, project, "balances")["team:eng"]["balance_nano"]
    assert wallet == 10**9 - total
    for gw in (a, b):
        report = Admin(gw).ok(Admin(gw).get("/admin/reconcile"))
        assert report["clean"] is True, report
    assert documents(firestore_host, project, "budgets")["eng-day"]["limit_usd"] == usd_text(
        10 * cost
    )


async def test_an_alert_is_claimed_once_across_instances(firestore_host: str):
    project = new_project()
    db, other = client(project, firestore_host), client(project, firestore_host)
    alert = Alert("budget:eng-day:eng:2026-12-07:80", "budget.threshold", {}, "2026-12-07")
    first, second = FirestoreDeliveryLog(lambda: db), FirestoreDeliveryLog(lambda: other)
    assert [await first.claim(alert), await second.claim(alert)] == [True, False]
    [pending] = await second.recent(5)
    assert (pending.key, pending.status) == (alert.key, "pending")
