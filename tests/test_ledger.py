"""The group-commit ledger on its own: both durability modes, replays, bad rows."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from billing.ledger import CHECKPOINT_EVERY_ROWS, LedgerEntry, LedgerError, SqliteLedger
from config_store.sqlite import SqliteStore


async def fresh_db(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.migrate()
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO pricing_tiers VALUES ('free', 'Free', '10')")
        db.execute("INSERT INTO users (id, name, tier_id) VALUES ('u1', 'U', 'free')")


def charge(request_id: str, amount: int, user: str | None = "u1") -> LedgerEntry:
    return LedgerEntry(
        request_id=request_id,
        user_id=user,  # type: ignore[arg-type]
        kind="charge",
        amount_nano=-amount,
        created_at="2026-01-01T00:00:00+00:00",
    )


@pytest.mark.parametrize("mode", ["NORMAL", "FULL"])
async def test_many_rows_commit_once_each(tmp_path: Path, mode: str):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path, synchronous=mode)
    await ledger.start()
    rows = CHECKPOINT_EVERY_ROWS + 500
    futures = [ledger.submit(charge(f"r{i}", i + 1)) for i in range(rows)]
    futures.append(ledger.submit(charge("r7", 8)))  # a replay of r7: no second charge
    await asyncio.gather(*futures)
    assert await ledger.balance("u1") == -sum(range(1, rows + 1))
    assert ledger.batches < rows  # group commit: many rows per transaction
    await ledger.close()
    with sqlite3.connect(path) as db:
        (count, total) = db.execute("SELECT count(*), sum(amount_nano) FROM ledger").fetchone()
    assert (count, total) == (rows, -sum(range(1, rows + 1)))


async def test_a_bad_row_fails_alone(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    good = ledger.submit(charge("ok-1", 5))
    bad = ledger.submit(charge("bad", 7, user="nobody"))  # no such user: foreign key
    also_good = ledger.submit(charge("ok-2", 11))
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], LedgerError)
    assert await ledger.balance("u1") == -16
    assert await ledger.balance("nobody") is None
    await ledger.close()


async def test_a_writer_holding_the_lock_does_not_stall_the_loop(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    committed = ledger.submit(charge("while-locked", 3))
    started = time.monotonic()
    for _ in range(30):  # the loop keeps running while the batch waits for the lock
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 1.0  # not blocked by SQLite's 5 s busy wait
    assert not committed.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(committed, timeout=5)
    assert await ledger.balance("u1") == -3
    await ledger.close()
