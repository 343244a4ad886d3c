"""The gateway on Firestore (Google's emulator): billing through the outbox,
two instances sharing config and balances, listeners, and migrate-store."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from config_store.firestore_client import client
from gateway.ops.cli import main
from gateway.settings import Settings
from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import documents, firestore_env, new_project
from tests.harness import GatewayServer, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9


def chat(gw: GatewayServer, text: str = "one two three", model: str = MINI) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 10},
        timeout=60,
    )


@pytest.fixture
def project() -> str:
    return new_project()


@pytest.fixture
def on_firestore(
    make_gateway: Callable[..., GatewayServer], firestore_host: str, project: str
) -> Callable[..., GatewayServer]:
    def make(**kwargs: Any) -> GatewayServer:
        return make_gateway(env=firestore_env(firestore_host, project), **kwargs)

    return make


def charges(host: str, project: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in documents(host, project, "ledger").items() if v["kind"] == "charge"}


def balance(host: str, project: str, user: str = "demo") -> int:
    return int(documents(host, project, "balances")[user]["balance_nano"])


def test_a_request_is_billed_through_the_outbox(
    on_firestore: Callable[..., GatewayServer],
    firestore_host: str,
    project: str,
    fake_openai: FakeOpenAI,
):
    gw = on_firestore()
    admin = Admin(gw)
    stats = admin.ok(admin.get("/admin/cache/stats"))
    assert (stats["source"], stats["model_configs_count"], stats["listening"]) == (
        "firestore",
        41,
        True,
    )
    response = chat(gw)
    assert response.status_code == 200, response.text
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert admin.ok(admin.get("/admin/reconcile"))["clean"] is True  # drains the outbox first
    [(request_id, row)] = charges(firestore_host, project).items()
    assert request_id == response.headers["x-request-id"]
    assert row["amount_nano"] == -cost and row["model_id"] == MINI
    assert balance(firestore_host, project) == START - cost
    models = documents(firestore_host, project, "model_configurations")
    assert models[MINI]["input_price_per_million"] == "0.15"
    assert {"id", "model_id", "provider", "context_window_size", "is_active", "created_at"} <= set(
        models[MINI]
    )


def test_two_instances_share_config_and_balances(
    on_firestore: Callable[..., GatewayServer],
    firestore_host: str,
    project: str,
    fake_openai: FakeOpenAI,
):
    a = on_firestore()
    b = on_firestore(do_seed=False)
    b.demo_key = a.demo_key
    # A price change through A's admin API reaches B through its listener: B's
    # snapshot would otherwise wait for its 10-minute TTL. (The wait is bounded,
    # never asserted on: how soon depends on the machine; about 0.1 s here.)
    listened = Admin(b).ok(Admin(b).get("/admin/cache/stats"))["listener_refreshes"]
    Admin(a).ok(Admin(a).patch(f"/admin/models/{MINI}", {"input_price_per_million": "0.30"}))
    for _ in range(1500):
        if Admin(b).get(f"/admin/models/{MINI}").json()["input_price_per_million"] == "0.30":
            break
        time.sleep(0.02)
    assert Admin(b).get(f"/admin/models/{MINI}").json()["input_price_per_million"] == "0.30"
    assert Admin(b).ok(Admin(b).get("/admin/cache/stats"))["listener_refreshes"] > listened

    # 500 requests for one user, split across both instances.
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: chat(a if i % 2 else b, f"word {i}"), range(500)))
    assert [r.status_code for r in answers].count(200) == 500
    for gw in (a, b):  # each ships its outbox (reconcile drains it first)
        Admin(gw).ok(Admin(gw).get("/admin/reconcile"))
    for gw in (a, b):  # now that no instance is shipping, both see the same, exact books
        report = Admin(gw).ok(Admin(gw).get("/admin/reconcile"))
        assert report["clean"] is True, report
    rows = charges(firestore_host, project)
    assert sorted(rows) == sorted(r.headers["x-request-id"] for r in answers)
    for row in rows.values():
        usage = (row["prompt_tokens"], row["completion_tokens"])
        assert row["amount_nano"] == -expected_cost_nano(*usage, "0.30", "0.60")
    assert balance(firestore_host, project) == START - sum(-r["amount_nano"] for r in rows.values())


def test_a_lost_listener_is_shown_and_replaced(on_firestore: Callable[..., GatewayServer]):
    gw = on_firestore()
    services = gw.services()
    services.cache.stop_listening()
    deadline = time.monotonic() + 5
    while True:
        stats = Admin(gw).ok(Admin(gw).get("/admin/cache/stats"))
        if stats["listener_failures"] >= 1 and stats["listening"]:
            break
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)
    assert stats["listener_error"] == "a config listener stopped"
    # Listening again: a change reaches the snapshot without waiting for the TTL.
    Admin(gw).ok(Admin(gw).patch("/admin/models/mock-1", {"note": "heard"}))
    assert Admin(gw).get("/admin/models/mock-1").json()["note"] == "heard"


def test_migrate_store_copies_everything_once(
    make_gateway: Callable[..., GatewayServer],
    firestore_host: str,
    project: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    source = make_gateway()
    Admin(source).ok(Admin(source).post("/admin/users", {"id": "zoe", "name": "Zoe"}), 201)
    Admin(source).ok(Admin(source).post("/admin/users/zoe/topup", {"amount_usd": "7.25"}), 201)
    assert chat(source, model="mock-1").status_code == 200
    spent = START - source.balance()
    source.stop()
    monkeypatch.setenv("GATEWAY_FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "cli"))
    args = ["migrate-store", "--from", f"sqlite:{source.db}", "--to", f"firestore:{project}"]

    assert main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "dry run" in dry and "models            41 created" in dry
    assert documents(firestore_host, project, "model_configurations") == {}

    assert main(args) == 0
    real = capsys.readouterr().out
    assert real.replace("migrated", "dry run: nothing was written") == dry
    assert len(documents(firestore_host, project, "model_configurations")) == 41
    assert len(documents(firestore_host, project, "model_profiles")) == 35
    assert balance(firestore_host, project) == START - spent
    assert balance(firestore_host, project, "zoe") == 7_250_000_000

    assert main(args) == 0  # again: nothing to do
    again = capsys.readouterr().out
    assert " 0 created" in again and " 0 updated" in again
    assert "created" not in again.replace(" 0 created", "")
    assert balance(firestore_host, project) == START - spent  # credited once

    # A gateway on the migrated project serves the same key and balance.
    moved = make_gateway(env=firestore_env(firestore_host, project), do_seed=False)
    moved.demo_key = source.demo_key
    assert chat(moved, model="mock-1").status_code == 200
    asyncio.run(asyncio.sleep(0))
    assert Settings.from_env(firestore_env(firestore_host, project)).store == "firestore"


def test_a_user_created_through_the_admin_api_is_served_and_charged(
    on_firestore: Callable[..., GatewayServer],
    firestore_host: str,
    project: str,
    fake_openai: FakeOpenAI,
):
    gw = on_firestore()
    admin = Admin(gw)
    created = admin.ok(admin.post("/admin/users", {"id": "zoe", "name": "Zoe"}), 201)
    assert created["balance_nano"] == 0
    assert documents(firestore_host, project, "balances")["zoe"] == {"balance_nano": 0}
    key = admin.ok(admin.post("/admin/users/zoe/keys", {"name": "laptop"}), 201)["key"]
    gw.demo_key = key  # chat() below sends this key

    broke = chat(gw)
    assert broke.status_code == 402, broke.text
    assert broke.json()["error"]["code"] == "insufficient_quota"
    admin.ok(admin.post("/admin/users/zoe/topup", {"amount_usd": "1.50"}), 201)
    served = chat(gw)
    assert served.status_code == 200, served.text
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert admin.ok(admin.get("/admin/reconcile"))["clean"] is True
    assert balance(firestore_host, project, "zoe") == 1_500_000_000 - cost
    assert charges(firestore_host, project)[served.headers["x-request-id"]]["user_id"] == "zoe"
    # Writing the user again never touches its balance document.
    admin.ok(admin.patch("/admin/users/zoe", {"name": "Zoë"}))
    assert balance(firestore_host, project, "zoe") == 1_500_000_000 - cost

    # A user written before balance documents were (or by hand) is an account at 0.
    db = client(project, firestore_host, sync=True)
    try:
        db.collection("users").document("old").set({"id": "old", "name": "Old", "tier_id": "free"})
    finally:
        db.close()
    gw.refresh()
    assert admin.ok(admin.get("/admin/users/old"))["balance_nano"] == 0
    admin.ok(admin.post("/admin/users/old/topup", {"amount_usd": "2"}), 201)
    assert admin.ok(admin.get("/admin/reconcile"))["clean"] is True
    assert balance(firestore_host, project, "old") == 2_000_000_000
