"""The group-commit ledger on its own: both durability modes, replays, bad rows."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from billing.ledger_types import LedgerEntry, LedgerError
from billing.sqlite_ledger import SqliteLedger
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
    rows = 4600
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
    # 30 ticks of 10 ms: not blocked by SQLite's 5 s busy wait (a loaded machine may
    # stretch the ticks, never to 4 s).
    assert time.monotonic() - started < 4.0
    assert not committed.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(committed, timeout=5)
    assert await ledger.balance("u1") == -3
    await ledger.close()


def usage_charge(request_id: str, prompt_tokens: int) -> LedgerEntry:
    return LedgerEntry(
        request_id=request_id,
        user_id="u1",
        kind="charge",
        amount_nano=-1,
        created_at="2026-01-01T00:00:00+00:00",
        prompt_tokens=prompt_tokens,
    )


async def test_a_value_sqlite_cannot_store_fails_its_row_and_the_writer_goes_on(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    try:
        # In one batch with good rows, then alone in a batch of its own.
        together = [
            ledger.submit(usage_charge("ok-1", 10)),
            ledger.submit(usage_charge("huge-1", 10**30)),  # OverflowError when bound
            ledger.submit(usage_charge("ok-2", 10)),
        ]
        results = await asyncio.gather(*together, return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], LedgerError) and "too large" in str(results[1])
        with pytest.raises(LedgerError):
            await ledger.submit(usage_charge("huge-2", 10**30))
        await ledger.submit(usage_charge("ok-3", 10))
        assert await ledger.balance("u1") == -3
        health = ledger.health()
        # A row's own fault: the ledger itself writes, so it stays healthy.
        assert (health.healthy, health.failed_rows, health.failed_batches) == (True, 2, 0)
        assert health.writer_restarts == 0 and health.queued == 0
        assert "too large" in (health.last_error or "")
    finally:
        await asyncio.wait_for(ledger.close(), timeout=30)


class _FailingConnection:
    """Stands in for the writer's connection: every statement raises `error`."""

    def __init__(self, real: sqlite3.Connection, error: Exception) -> None:
        self.real = real
        self.error = error
        self.in_transaction = False

    def execute(self, *args: object) -> sqlite3.Cursor:
        raise self.error


async def test_any_error_fails_only_its_batch_and_health_follows(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    try:
        real = ledger._conn.db
        assert real is not None
        ledger._conn.db = _FailingConnection(real, RuntimeError("the disk caught fire"))  # type: ignore[assignment]
        failed = await asyncio.gather(
            ledger.submit(charge("lost-1", 5)), ledger.submit(charge("lost-2", 6)),
            return_exceptions=True,
        )  # fmt: skip
        assert all(isinstance(r, LedgerError) for r in failed)
        health = ledger.health()
        assert (health.healthy, health.failed_batches, health.failed_rows) == (False, 1, 2)
        assert health.last_error == "RuntimeError: the disk caught fire"
        ledger._conn.db = real
        await asyncio.wait_for(ledger.submit(charge("kept", 7)), timeout=5)
        assert ledger.health().healthy
        assert await ledger.balance("u1") == -7
    finally:
        await asyncio.wait_for(ledger.close(), timeout=30)


async def test_a_lock_held_past_the_busy_timeout_fails_the_batch_until_it_is_released(
    tmp_path: Path,
):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path, busy_timeout=0.1)
    await ledger.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(LedgerError, match="stayed locked"):
            await asyncio.wait_for(ledger.submit(charge("while-locked", 3)), timeout=10)
        assert not ledger.health().healthy
        other.execute("COMMIT")
        # With no request coming, the writer finds out by itself that it can write.
        for _ in range(100):
            if ledger.health().healthy:
                break
            await asyncio.sleep(0.05)
        assert ledger.health().healthy
        await asyncio.wait_for(ledger.submit(charge("after", 4)), timeout=5)
        assert await ledger.balance("u1") == -4
        assert not await ledger.has_entry("while-locked")
    finally:
        other.close()
        await asyncio.wait_for(ledger.close(), timeout=30)


async def test_a_stopped_writer_is_restarted_and_its_committed_rows_succeed(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    try:
        account = ledger._account
        broken = {"once": True}

        def account_once(*args: object) -> None:
            if broken.pop("once", False):
                raise RuntimeError("a bug after the commit")
            account(*args)  # type: ignore[arg-type]

        ledger._account = account_once  # type: ignore[method-assign]
        # The row committed before the writer stopped: it is found and succeeds.
        await asyncio.wait_for(ledger.submit(charge("committed", 5)), timeout=5)
        await asyncio.wait_for(ledger.submit(charge("next", 6)), timeout=5)
        assert await ledger.balance("u1") == -11
        health = ledger.health()
        assert (health.writer_restarts, health.healthy) == (1, True)
        assert health.last_error == "RuntimeError: a bug after the commit"
    finally:
        await asyncio.wait_for(ledger.close(), timeout=30)


async def test_a_failing_batch_callback_does_not_stop_the_writer(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)

    def broken(rows: int, seconds: float) -> None:
        raise ValueError("metrics are down")

    ledger.on_batch = broken
    await ledger.start()
    try:
        for i in range(3):
            await asyncio.wait_for(ledger.submit(charge(f"r{i}", 1)), timeout=5)
        assert ledger.health().writer_restarts == 0
        assert await ledger.balance("u1") == -3
    finally:
        await asyncio.wait_for(ledger.close(), timeout=30)


async def test_close_completes_while_rows_cannot_be_written(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path, busy_timeout=0.5, close_timeout=0.1)
    await ledger.start()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        stuck = [ledger.submit(charge(f"stuck-{i}", 1)) for i in range(3)]
        await asyncio.sleep(0)
        # Bounded: what cannot be written within close_timeout fails; the
        # timeout only bounds the wait for close() to come back.
        await asyncio.wait_for(ledger.close(), timeout=30)
        results = await asyncio.gather(*stuck, return_exceptions=True)
        assert all(isinstance(r, LedgerError) for r in results)
        late = ledger.submit(charge("late", 1))
        with pytest.raises(LedgerError, match="closing"):
            await late
    finally:
        other.execute("ROLLBACK")
        other.close()
