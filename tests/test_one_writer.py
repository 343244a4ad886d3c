"""One writer per SQLite file: the config store writes through the ledger's
writer, each write a transaction of its own between the ledger's batches."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.ledger_types import LedgerEntry
from billing.sqlite_ledger import SqliteLedger
from config_store.catalogue import FREE_TIER
from config_store.schema import User
from config_store.sqlite import SqliteStore
from config_store.store import Conflict, NotFound, StoreError, StoreUnavailable
from tests.harness import GatewayServer

ROUNDS = 12
CLIENTS = 8


def count_thread_fallbacks(ledger: Any) -> list[int]:
    """Counts the batches that found the write lock taken on the loop and went
    to the worker thread to wait for it."""
    fallbacks = [0]
    patiently = ledger._write_patiently

    def counted(entries: Any) -> Any:
        fallbacks[0] += 1
        return patiently(entries)

    ledger._write_patiently = counted
    return fallbacks


async def test_admin_changes_during_metered_requests_never_wait_on_a_lock(
    gateway: GatewayServer,
):
    ledger = gateway.services().ledger
    fallbacks = count_thread_fallbacks(ledger)
    start_balance = gateway.balance()
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    user = {"Authorization": f"Bearer {gateway.demo_key}"}
    responses: list[httpx.Response] = []
    history_ids: list[int] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=CLIENTS + 2)

    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60, limits=limits) as client:
        listed = await client.get("/admin/models", headers=admin)
        models = [m["model_id"] for m in listed.json()["data"]]
        assert len(models) > 20

        async def metered() -> None:
            while not done.is_set():
                body = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
                response = await client.post("/v1/chat/completions", headers=user, json=body)
                responses.append(response)

        async def changes() -> None:
            try:
                for _ in range(2000):  # bounds the wait only: start once requests flow
                    if len(responses) >= CLIENTS:
                        break
                    await asyncio.sleep(0.01)
                for round_ in range(ROUNDS):
                    # Every model in one transaction: a long write, while rows keep coming.
                    rows = {"models": [{"model_id": m, "note": f"round {round_}"} for m in models]}
                    answer = await client.post("/admin/models/bulk", headers=admin, json=rows)
                    assert answer.status_code == 200, answer.text
                    history_ids.extend(answer.json()["history_ids"])
            finally:
                done.set()

        await asyncio.gather(changes(), *(metered() for _ in range(CLIENTS)))

    assert {r.status_code for r in responses} == {200}, [r.text for r in responses[:3]]
    assert len(history_ids) == ROUNDS * len(models)
    charges = gateway.charges()
    assert len(charges) == len(responses)
    assert start_balance - gateway.balance() == -sum(c["amount_nano"] for c in charges)
    recorded = {row[0] for row in gateway.query("SELECT id FROM config_history")}
    assert set(history_ids) <= recorded
    notes = gateway.query("SELECT DISTINCT note FROM model_configurations")
    assert notes == [(f"round {ROUNDS - 1}",)]
    # No write waited on another's lock: the store's writes queued on the ledger's writer.
    assert fallbacks[0] == 0
    assert getattr(ledger, "lock_waits", 0) == 0
    assert ledger.health().healthy


async def writer_and_store(path: Path) -> tuple[SqliteLedger, SqliteStore]:
    ledger = SqliteLedger(path)
    store = SqliteStore(path, ledger)
    await store.open()
    await store.migrate()
    await store.put_tier(FREE_TIER)
    await store.put_user(User("u1", "U", FREE_TIER.id))
    return ledger, store


def charge(request_id: str, user: str = "u1") -> LedgerEntry:
    return LedgerEntry(request_id, user, "charge", -5, "2026-01-01T00:00:00+00:00")


async def test_a_failed_store_write_and_a_failed_batch_fail_alone(tmp_path: Path):
    path = tmp_path / "one.db"
    ledger, store = await writer_and_store(path)
    try:
        rows = [ledger.submit(charge(f"r{i}")) for i in range(50)]
        # A change that fails half way: its first part is rolled back, the rows stay.
        with pytest.raises(NotFound):
            await store.change_many(
                [
                    ("model_profile", "kept?", {"model_id": "kept?", "scores": {}}),
                    ("model_profile", "nothing", None),
                ],
                actor="admin",
            )
        with pytest.raises(Conflict):  # a user of a tier that does not exist
            await store.put_user(User("u2", "U2", "no-such-tier"))
        await asyncio.gather(*rows)
        # A batch whose rows all fail (no such user) leaves the store's writes alone.
        renamed = store.put_user(User("u1", "Renamed", FREE_TIER.id))
        bad = ledger.submit(charge("bad", user="nobody"))
        assert await renamed
        with pytest.raises(Exception, match="FOREIGN KEY"):
            await bad
        assert await ledger.balance("u1") == -250
        catalogue = await store.load()
        assert [(u.id, u.name) for u in catalogue.users] == [("u1", "Renamed")]
        assert catalogue.profiles == ()
        assert await store.history(entity="model_profile") == []
        assert ledger.health().healthy
        assert ledger.lock_waits == 0
    finally:
        await store.close()
        await ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM ledger").fetchone() == (50,)


async def test_the_store_never_writes_on_its_own_connection(tmp_path: Path):
    ledger, store = await writer_and_store(tmp_path / "one.db")
    try:
        read = store._read  # type: ignore[attr-defined]

        async def insert(db: Any) -> None:
            await db.execute("INSERT INTO pricing_tiers VALUES ('x', 'X', '0')")

        with pytest.raises(StoreError, match="readonly"):
            await read(insert)
    finally:
        await store.close()
        await ledger.close()


async def test_a_write_waits_for_another_process_holding_the_lock(tmp_path: Path):
    """The CLI beside a live server writes the same file: the writer waits for
    its lock (up to the busy timeout) and both writes land."""
    path = tmp_path / "one.db"
    ledger, store = await writer_and_store(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO pricing_tiers VALUES ('cli', 'CLI', '0')")
        locked.set()
        release.wait(10)
        other.execute("COMMIT")

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        renamed = asyncio.ensure_future(store.put_user(User("u1", "While locked", FREE_TIER.id)))
        row = ledger.submit(charge("while-locked"))
        for _ in range(1000):  # bounds the wait only: until the writer runs the store's write
            if ledger._jobs.running is not None:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        release.set()
        assert await renamed
        await row
        assert ledger.lock_waits >= 1
        assert {t.id for t in (await store.load()).tiers} == {FREE_TIER.id, "cli"}
        assert await ledger.balance("u1") == -5
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
        other.close()
        await store.close()
        await ledger.close()


async def test_after_the_writer_closed_the_store_is_unavailable(tmp_path: Path):
    ledger, store = await writer_and_store(tmp_path / "one.db")
    await ledger.close()
    try:
        with pytest.raises(StoreUnavailable):
            await store.put_user(User("u1", "Late", FREE_TIER.id))
        assert [u.name for u in (await store.load()).users] == ["U"]
    finally:
        await store.close()
