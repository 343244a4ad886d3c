"""The ledger: one row per request (or top-up), written by a group-commit writer.

`submit()` queues a row and returns a future that resolves once the row's
transaction has committed. One writer task takes everything queued, writes it
in one transaction on its own thread, and resolves the futures: under load many
requests share one commit; at rest a row commits at once. The request id is the
primary key and rows are inserted with `INSERT OR IGNORE`, so a replay never
charges twice; a trigger in the schema applies each new row to its user's
balance in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("gateway.ledger")


# In-loop mode checkpoints the WAL itself, in the worker thread, after this many rows.
CHECKPOINT_EVERY_ROWS = 4096
# How long a write on the event loop may wait for another writer's lock.
_LOOP_BUSY_MS = 2


class LedgerError(Exception):
    """A ledger row could not be written or read."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    request_id: str
    user_id: str
    kind: str  # "charge" | "topup" | "adjust"
    amount_nano: int  # signed: charges are negative
    created_at: str
    model_id: str = ""
    provider: str = ""
    key_prefix: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    prices: str = "{}"  # JSON copy of the prices used
    reason: str = ""
    key_id: str = ""  # the API key's id (the start of its hash), for spend caps and usage
    # What the provider's usage priced beyond the hold, not charged (capture <= authorisation).
    uncollected_nano: int = 0
    # Where the billed tokens come from: "provider", "counted" (no usage arrived),
    # "partial" (a stream that ended early: the provider's figures so far plus our
    # count of what was relayed) or "anomaly" (usage not plausible: our count).
    usage_source: str = ""
    usage_raw: str = ""  # the provider's usage as it came, when it was not plausible

    def row(self) -> tuple[str | int, ...]:
        return (
            self.request_id,
            self.user_id,
            self.kind,
            self.amount_nano,
            self.created_at,
            self.model_id,
            self.provider,
            self.key_prefix,
            self.prompt_tokens,
            self.completion_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.prices,
            self.reason,
            self.key_id,
            self.uncollected_nano,
            self.usage_source,
            self.usage_raw,
        )


_COLUMNS = (
    "request_id, user_id, kind, amount_nano, created_at, model_id, provider, key_prefix, "
    "prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, prices, reason, "
    "key_id, uncollected_nano, usage_source, usage_raw"
)
_ROW_MARKS = f"({', '.join('?' * 18)})"
_INSERT = f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES {_ROW_MARKS}"  # noqa: S608


class Ledger(Protocol):
    batches: int
    rows: int
    on_batch: Callable[[int, float], None] | None  # rows and seconds of each commit

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]: ...

    async def drained(self) -> None: ...

    async def balance(self, user_id: str) -> int | None: ...

    async def key_spent(self, key_id: str) -> int: ...

    async def has_entry(self, request_id: str) -> bool: ...


class SqliteLedger:
    """Group-commit writer over its own sqlite3 connection.

    With `synchronous=NORMAL` (the default) a commit only appends to the WAL
    file, which takes microseconds, so batches are written on the event loop
    itself: no thread hop, and no wait for the GIL, which a writer thread must
    take back after every SQLite call while the loop is busy (each wait up to
    the interpreter's 5 ms switch interval). WAL checkpoints, which do reach
    the disk, run on a separate connection in a worker thread. With FULL every
    commit waits for fsync, so batches are written in the worker thread.
    """

    def __init__(self, path: Path, *, max_batch: int = 512, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in {"NORMAL", "FULL"}:
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._path = path
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._in_loop = self._synchronous == "NORMAL"
        self._db: sqlite3.Connection | None = None
        self._checkpoint_db: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Future[None] | None = None
        self._queue: list[tuple[LedgerEntry, asyncio.Future[None]]] = []
        self._writing: list[tuple[LedgerEntry, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0
        self.on_batch: Callable[[int, float], None] | None = None

    def _open(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a commit is in the WAL file before the response's last
        # bytes leave, so a crash of this process loses no row; FULL also waits
        # for the disk (fsync) at every commit, which survives a power loss too.
        db.execute(f"PRAGMA synchronous = {self._synchronous}")
        if self._in_loop:
            # On the loop, never wait for another writer's lock: on SQLITE_BUSY
            # the batch is handed to the worker thread, which may wait.
            db.execute(f"PRAGMA busy_timeout = {_LOOP_BUSY_MS}")
            db.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpoint_db = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._checkpoint_db.execute("PRAGMA busy_timeout = 5000")
        self._db = db

    def _checkpoint(self) -> None:
        if self._checkpoint_db is not None:
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _maybe_checkpoint(self, rows: int) -> None:
        self._since_checkpoint += rows
        if self._since_checkpoint < CHECKPOINT_EVERY_ROWS:
            return
        if self._checkpointing is None or self._checkpointing.done():
            self._since_checkpoint = 0
            loop = asyncio.get_running_loop()
            self._checkpointing = loop.run_in_executor(self._executor, self._checkpoint)
            self._checkpointing.add_done_callback(_log_checkpoint_failure)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._open)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger in {self._path}: {exc}") from exc
        self._task = loop.create_task(self._writer())

    async def close(self) -> None:
        if self._task is not None:
            # Drain what is queued before stopping: nothing accepted is lost.
            while self._queue:
                self._wake.set()
                await asyncio.sleep(0.001)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._checkpointing is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._checkpointing
        loop = asyncio.get_running_loop()
        for db in (self._db, self._checkpoint_db):
            if db is not None:
                await loop.run_in_executor(self._executor, db.close)
        self._db = self._checkpoint_db = None
        self._executor.shutdown(wait=True)

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, future))
        self._wake.set()
        return future

    async def drained(self) -> None:
        """Wait until every row submitted so far is written (or has failed)."""
        pending = [future for _, future in (*self._writing, *self._queue)]
        if pending:
            await asyncio.gather(*(asyncio.shield(f) for f in pending), return_exceptions=True)

    async def balance(self, user_id: str) -> int | None:
        row = await self._read_one("SELECT balance_nano FROM users WHERE id = ?", user_id)
        return None if row is None else int(row[0])

    async def key_spent(self, key_id: str) -> int:
        """What a key has been charged so far (read once per key and process)."""
        sql = (
            "SELECT -COALESCE(SUM(amount_nano), 0) FROM ledger WHERE key_id = ? AND kind = 'charge'"
        )
        row = await self._read_one(sql, key_id)
        return int(row[0]) if row else 0

    async def has_entry(self, request_id: str) -> bool:
        return (
            await self._read_one("SELECT 1 FROM ledger WHERE request_id = ?", request_id)
            is not None
        )

    async def _read_one(self, sql: str, *args: str) -> tuple[int, ...] | None:
        def read() -> tuple[int, ...] | None:
            assert self._db is not None
            row: tuple[int, ...] | None = self._db.execute(sql, args).fetchone()
            return row

        try:
            if self._in_loop:
                return read()
            return await asyncio.get_running_loop().run_in_executor(self._executor, read)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger: {exc}") from exc

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: len(batch)]
                self._writing = batch
                entries = [entry for entry, _ in batch]
                began = time.perf_counter()
                if self._in_loop:
                    try:
                        failures = self._write(entries)
                    except _Busy:
                        failures = await loop.run_in_executor(
                            self._executor, self._write_patiently, entries
                        )
                    self._maybe_checkpoint(len(entries))
                else:
                    failures = await loop.run_in_executor(self._executor, self._write, entries)
                self.batches += 1
                self.rows += len(batch)
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - began)
                for index, (_, future) in enumerate(batch):
                    if future.done():
                        continue
                    error = failures.get(index)
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(LedgerError(error))

    def _write(self, entries: Sequence[LedgerEntry]) -> dict[int, str]:
        """Write a batch as one multi-row INSERT: one statement is one transaction
        and one trip through sqlite3_step, so this thread gives up and retakes the
        GIL once per batch instead of once per row. If it fails, row by row, so
        that one bad row fails alone. Returns the failed rows' errors by index."""
        assert self._db is not None
        db = self._db
        try:
            db.execute(_insert_many(len(entries)), [v for e in entries for v in e.row()])
            return {}
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Busy from exc
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
        failures: dict[int, str] = {}
        for index, entry in enumerate(entries):
            try:
                db.execute(_INSERT, entry.row())
            except sqlite3.Error as exc:
                failures[index] = f"ledger write failed: {exc}"
                log.error("ledger row %s not written: %s", entry.request_id, exc)
        return failures

    def _write_patiently(self, entries: Sequence[LedgerEntry]) -> dict[int, str]:
        """In the worker thread: wait for another writer's lock as long as SQLite's
        usual busy timeout allows."""
        assert self._db is not None
        self._db.execute("PRAGMA busy_timeout = 5000")
        try:
            return self._write(entries)
        except _Busy as exc:
            error = f"ledger write failed: the database stayed locked ({exc.__cause__})"
            return dict.fromkeys(range(len(entries)), error)
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {_LOOP_BUSY_MS}")


class _Busy(Exception):
    """Another connection holds the database's write lock."""


def _log_checkpoint_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("ledger checkpoint failed: %s", future.exception())


@functools.lru_cache(maxsize=64)
def _insert_many(rows: int) -> str:
    values = ", ".join([_ROW_MARKS] * rows)
    return f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES {values}"  # noqa: S608
