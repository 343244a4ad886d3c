"""The one connection of a process that writes its SQLite file.

SQLite lets one connection at a time write a database file; two writers in one
process only take turns through the lock, each waiting on the other. So a
process writes its file through one `SqliteWrites`: in the gateway that is the
ledger's writer (`billing.sqlite_ledger.SqliteLedger`, which satisfies this protocol),
and a store used without a ledger (the CLI, the seed, tests) makes a
`StandaloneWrites` of its own.

Another process (the `gateway` CLI beside a live server) may still write the
same file: every implementation waits for the lock held by another process up
to its busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")


class SqliteWrites(Protocol):
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the writing connection inside one write transaction of its
        own (`BEGIN IMMEDIATE`), committed if `fn` returns and rolled back if it
        raises; what `fn` raises is raised as it is. `fn` may run more than once
        (when another process held the lock), so it only touches the database.
        A writer that cannot take the work (closed, the file cannot be opened)
        raises an error of its own."""
        ...


class StandaloneWrites:
    """A writing connection of its own, opened on first use, used one write at a
    time in a thread of its own."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self._path = path
        self._busy_ms = max(1, round(busy_timeout * 1000))
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writes")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._transact, fn)

    def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self._db = open_writer(self._path, self._busy_ms)
        return transact(self._db, fn)

    async def close(self) -> None:
        async with self._lock:
            executor, self._executor = self._executor, None
            if executor is None:
                return
            db, self._db = self._db, None
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(executor, db.close)
            executor.shutdown(wait=True)


def open_writer(path: Path, busy_ms: int) -> sqlite3.Connection:
    """A connection that writes: WAL (readers never wait for it, nor it for them),
    foreign keys enforced."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        # In WAL mode NORMAL keeps a commit through a crash of this process (not
        # a power loss), without an fsync each.
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def transact(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn` in one write transaction: committed if it returns, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        raise
    return result
