"""How often the ledger's rows and the store's admin changes wait on SQLite's
write lock when they run at the same time in one process.

    .venv/bin/python bench/writers.py [--rows 20000] [--changes 400]

Rows are submitted in bursts while admin changes (a user renamed, history
recorded) run back to back. Printed: how many ledger batches found the lock
held by another connection and went to the worker thread to wait, how many
store writes found it held, and that every row and every change is there.

With `--intruder` another connection (as another process would) takes the
write lock for 5 ms every 20 ms: the waits it causes are counted too, which
shows that the counters count.

Works on the code before and after the store began writing through the
ledger's writer: before, the store's own connection is given a busy timeout
of 0 and each write that finds the lock held is counted and tried again.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.ledger_types import LedgerEntry
from billing.sqlite_ledger import SqliteLedger
from config_store.catalogue import FREE_TIER
from config_store.profiles import DEMO_PROFILES
from config_store.schema import User
from config_store.sqlite import SqliteStore
from config_store.store import StoreError

ONE_WRITER = "writes" in inspect.signature(SqliteStore).parameters


class Counts:
    ledger_waits = 0  # after: every write the one writer made that waited
    store_waits = 0


def counted_old(ledger: SqliteLedger, store: SqliteStore, counts: Counts) -> None:
    """The code before: count the ledger's thread fallbacks and the store's locked writes."""
    patiently = ledger._write_patiently  # type: ignore[attr-defined]

    def write_patiently(entries: Any) -> Any:
        counts.ledger_waits += 1
        return patiently(entries)

    ledger._write_patiently = write_patiently  # type: ignore[attr-defined]
    run = store._run  # type: ignore[attr-defined]

    async def run_counting(work: Any) -> Any:
        waited = False
        while True:
            try:
                return await run(work)
            except StoreError as exc:
                if "locked" not in str(exc):
                    raise
                if not waited:
                    counts.store_waits += 1
                    waited = True
                await asyncio.sleep(0.001)

    store._run = run_counting  # type: ignore[attr-defined]


def intrude(path: Path, stop: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    while not stop.wait(0.02):
        db.execute("BEGIN IMMEDIATE")
        time.sleep(0.005)
        db.execute("COMMIT")
    db.close()


async def main(rows: int, changes: int, intruder: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "writers.db"
        ledger = SqliteLedger(path)
        store = SqliteStore(path, writes=ledger) if ONE_WRITER else SqliteStore(path)  # type: ignore[call-arg]
        await store.open()
        await store.migrate()
        await store.put_tier(FREE_TIER)
        await store.put_user(User("u1", "U", FREE_TIER.id))
        await ledger.start()
        counts = Counts()
        if not ONE_WRITER:
            await store._run(lambda db: db.execute("PRAGMA busy_timeout = 0"))  # type: ignore[attr-defined]
            counted_old(ledger, store, counts)

        async def charge() -> None:
            futures = []
            for i in range(rows):
                futures.append(
                    ledger.submit(
                        LedgerEntry(f"r{i}", "u1", "charge", -1, "2026-01-01T00:00:00+00:00")
                    )
                )
                if i % 50 == 49:
                    await asyncio.sleep(0)
            await asyncio.gather(*futures)

        async def admin() -> None:
            for i in range(changes):
                await store.put_user(User("u1", f"U {i}", FREE_TIER.id))
                profile = DEMO_PROFILES[i % len(DEMO_PROFILES)]
                await store.change(
                    "model_profile", profile.model_id, profile.to_json(), actor="bench"
                )
                await asyncio.sleep(0)

        stop = threading.Event()
        intruding = threading.Thread(target=intrude, args=(path, stop), daemon=True)
        if intruder:
            intruding.start()
        began = time.perf_counter()
        await asyncio.gather(charge(), admin())
        seconds = time.perf_counter() - began
        stop.set()
        if intruder:
            intruding.join()
        if ONE_WRITER:  # the writer counts both kinds of write
            counts.ledger_waits = ledger.lock_waits
        await ledger.close()
        await store.close()
        with sqlite3.connect(path) as db:
            written = db.execute("SELECT count(*) FROM ledger").fetchone()[0]
            balance = db.execute("SELECT balance_nano FROM users").fetchone()[0]
            history = db.execute("SELECT count(*) FROM config_history").fetchone()[0]
        print(f"one writer: {ONE_WRITER}; {rows} rows, {2 * changes} admin writes, {seconds:.2f} s")
        if ONE_WRITER:
            print(
                f"ledger batches: {ledger.batches}; batches and store writes that waited "
                f"on the lock: {counts.ledger_waits}"
            )
        else:
            print(
                f"ledger batches: {ledger.batches}, of which waited on the lock: "
                f"{counts.ledger_waits}; store writes that waited: {counts.store_waits}"
            )
        print(f"rows written: {written} (balance {balance}); changes recorded: {history}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--changes", type=int, default=400)
    parser.add_argument("--intruder", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.changes, args.intruder))
