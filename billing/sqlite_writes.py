"""What the SQLite ledger's writer does on its connection: open it, write a
batch of rows, find which rows committed, run a store write in a transaction
of its own. Synchronous: the writer calls these on the loop or in its thread."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from billing.ledger_types import LedgerEntry, LedgerError
from billing.wal import backfill, checkpoint

T = TypeVar("T")

# How long a write on the event loop may wait for the lock held by another
# process (the CLI beside a live server): no other connection of this one writes.
LOOP_BUSY_MS = 2
# Errors that belong to one row (a value SQLite cannot bind or store, a
# constraint): the other rows of its batch are written, and the ledger is not
# unhealthy because of them.
ROW_FAULTS = (
    OverflowError,
    TypeError,
    ValueError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
)

_COLUMNS = (
    "request_id, user_id, kind, amount_nano, created_at, model_id, provider, key_prefix, "
    "prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, prices, reason, "
    "key_id, uncollected_nano, usage_source, usage_raw, team_id, paid_by, end_user"
)
_ROW_MARKS = f"({', '.join('?' * 21)})"
_INSERT = f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES {_ROW_MARKS}"  # noqa: S608


class Busy(Exception):
    """Another connection holds the database's write lock."""


def open_connections(
    path: Path, *, synchronous: str, busy_ms: int, in_loop: bool, wal_kept_bytes: int = 0
) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """The writer's connection and the one its checkpoints run on."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {busy_ms}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA foreign_keys = ON")
    # WAL + NORMAL: a commit is in the WAL file before the response's last
    # bytes leave, so a crash of this process loses no row; FULL also waits
    # for the disk (fsync) at every commit, which survives a power loss too.
    db.execute(f"PRAGMA synchronous = {synchronous}")
    # Checkpoints are ours (billing.wal), never one inside a commit; when this
    # connection restarts the WAL it cuts the file back to `wal_kept_bytes`.
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute(f"PRAGMA journal_size_limit = {int(wal_kept_bytes)}")
    if in_loop:
        # On the loop, never wait for another writer's lock: on SQLITE_BUSY
        # the batch is handed to the worker thread, which may wait.
        db.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_MS}")
    # Checkpoints wait for readers only briefly (billing.wal sets how long).
    checkpointer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    return db, checkpointer


class WriterConnection:
    """The ledger's writing connection (and the one its checkpoints run on), and
    what the writer does on it: on the loop in NORMAL mode, where it waits for
    another process's lock only `LOOP_BUSY_MS`, else in the worker thread."""

    def __init__(
        self, path: Path, *, synchronous: str, busy_ms: int, in_loop: bool, wal_kept_bytes: int = 0
    ) -> None:
        self._path = path
        self._wal_kept_bytes = wal_kept_bytes
        self._synchronous = synchronous
        self._busy_ms = busy_ms
        self._in_loop = in_loop
        self.db: sqlite3.Connection | None = None
        self.checkpoint_db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.db, self.checkpoint_db = open_connections(
            self._path,
            synchronous=self._synchronous,
            busy_ms=self._busy_ms,
            in_loop=self._in_loop,
            wal_kept_bytes=self._wal_kept_bytes,
        )

    def connection(self) -> sqlite3.Connection:
        if self.db is None:
            raise LedgerError("the ledger is not open")
        return self.db

    def read_one(self, sql: str, args: tuple[str, ...]) -> tuple[int, ...] | None:
        row: tuple[int, ...] | None = self.connection().execute(sql, args).fetchone()
        return row

    def write(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        return write_rows(self.connection(), entries)

    def write_patiently(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        """In the worker thread: wait for another writer's lock as long as the busy
        timeout allows."""
        db = self.connection()
        with waiting_for_locks(db, self._busy_ms) if self._in_loop else contextlib.nullcontext():
            try:
                return self.write(entries)
            except Busy as exc:
                # Some rows may have gone in one by one before the lock was lost.
                return self.missing(
                    entries, LedgerError(f"the database stayed locked ({exc.__cause__})")
                )

    def missing(self, entries: Sequence[LedgerEntry], error: Exception) -> dict[int, Exception]:
        """After a failure that escaped the row-by-row writes, which rows did not
        commit (all of them, if even that cannot be read)."""
        try:
            return missing_rows(self.connection(), entries, error)
        except Exception:
            return dict.fromkeys(range(len(entries)), error)

    def transact(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[T, bool]:
        """In the worker thread: `fn` in one write transaction; and whether it had
        to wait for another process's lock (in NORMAL mode, where it is tried
        first with the loop's short busy timeout)."""
        db = self.connection()
        try:
            return transact(db, fn), False
        except Exception as exc:
            if not (self._in_loop and is_busy(exc)):
                raise
        with waiting_for_locks(db, self._busy_ms):
            return transact(db, fn), True

    def probe(self) -> None:
        take_write_lock(self.connection())

    def checkpoint(self, wait_ms: int) -> bool:
        db = self.checkpoint_db
        return db is not None and checkpoint(db, wait_ms)

    def backfill(self) -> None:
        db = self.checkpoint_db
        if db is not None:
            backfill(db)


def write_rows(db: sqlite3.Connection, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
    """Write a batch as one multi-row INSERT: one statement is one transaction
    and one trip through sqlite3_step, so this thread gives up and retakes the
    GIL once per batch instead of once per row. If it fails, row by row, so
    that one bad row fails alone. Returns the failed rows' errors by index.
    Raises `Busy` when another connection holds the lock: written again, the
    rows already in are ignored (INSERT OR IGNORE)."""
    try:
        db.execute(insert_many(len(entries)), [v for e in entries for v in e.row()])
        return {}
    except Exception as exc:
        rollback(db)
        if is_busy(exc):
            raise Busy from exc
    failures: dict[int, Exception] = {}
    for index, entry in enumerate(entries):
        try:
            db.execute(_INSERT, entry.row())
        except Exception as exc:
            rollback(db)
            if is_busy(exc):
                raise Busy from exc
            failures[index] = exc
    return failures


def missing_rows(
    db: sqlite3.Connection, entries: Sequence[LedgerEntry], error: Exception
) -> dict[int, Exception]:
    """`error` for each of the rows that is not in the ledger."""
    sql = "SELECT 1 FROM ledger WHERE request_id = ?"
    return {
        index: error
        for index, entry in enumerate(entries)
        if db.execute(sql, (entry.request_id,)).fetchone() is None
    }


@contextlib.contextmanager
def waiting_for_locks(db: sqlite3.Connection, busy_ms: int) -> Iterator[None]:
    """A connection set up for the loop waits for another writer's lock up to
    `busy_ms` meanwhile."""
    db.execute(f"PRAGMA busy_timeout = {busy_ms}")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            db.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_MS}")


def take_write_lock(db: sqlite3.Connection) -> None:
    """Take the write lock and let it go (raises if it cannot be taken)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    finally:
        rollback(db)


def is_busy(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return isinstance(exc, sqlite3.OperationalError) and code & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def transact(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
    return result


def rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(Exception):
        if db.in_transaction:
            db.execute("ROLLBACK")


def describe(exc: BaseException) -> str:
    """An error for logs and /health: its type and message, kept short."""
    text = str(exc) or "no message"
    if not isinstance(exc, (LedgerError, sqlite3.Error)):
        text = f"{type(exc).__name__}: {text}"
    return text[:300]


@functools.lru_cache(maxsize=64)
def insert_many(rows: int) -> str:
    values = ", ".join([_ROW_MARKS] * rows)
    return f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES {values}"  # noqa: S608
