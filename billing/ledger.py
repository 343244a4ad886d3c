"""The ledger: one row per request (or top-up), written by a group-commit writer.

`submit()` queues a row and returns a future that resolves once the row's
transaction has committed. One writer task takes everything queued, writes it
in one transaction on its own thread, and resolves the futures: under load many
requests share one commit; at rest a row commits at once. The request id is the
primary key and rows are inserted with `INSERT OR IGNORE`, so a replay never
charges twice; a trigger in the schema applies each new row to its user's
balance in the same transaction.

Whatever goes wrong while a batch is written (a value SQLite cannot store, a
full disk, a lock held past the busy timeout, a bug) fails that batch's rows
with `LedgerError` and the writer goes on with the next batch; a supervisor
restarts the writer should it ever stop. `health()` says whether rows are
being written.

The SQLite ledger's writer is the one connection of the gateway process that
writes the database file: the config store writes through it too (`write()`,
which satisfies `config_store.writes.SqliteWrites`). A store write is a
transaction of its own, run between two batches, so the two never wait on each
other's lock and neither's failure can roll back the other's rows.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from billing.wal import CHECKPOINT_BYTES, WalPolicy

T = TypeVar("T")
log = logging.getLogger("gateway.ledger")


# How long a write on the event loop may wait for the lock held by another
# process (the CLI beside a live server): no other connection of this one writes.
_LOOP_BUSY_MS = 2
# While the last batch failed, how often the writer checks that it could write again.
_PROBE_SECONDS = 1.0
# A pause before a stopped writer is restarted, so that a writer that keeps
# failing does not spin.
_RESTART_SECONDS = 0.05
# Errors that belong to one row (a value SQLite cannot bind or store, a
# constraint): the other rows of its batch are written, and the ledger is not
# unhealthy because of them.
_ROW_FAULTS = (
    OverflowError,
    TypeError,
    ValueError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
)


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


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """What the writer is doing, for /health and /metrics."""

    healthy: bool  # rows are being written: no failed batch since the last good one, none stuck
    failed_batches: int = 0  # batches of which no row could be written
    failed_rows: int = 0  # every row that failed, alone or with its batch
    writer_restarts: int = 0
    last_error: str | None = None
    queued: int = 0  # rows submitted and not yet committed or failed
    oldest_queued_seconds: float = 0.0
    wal_bytes: int = 0
    checkpoints: int = 0


class Ledger(Protocol):
    batches: int
    rows: int
    on_batch: Callable[[int, float], None] | None  # rows and seconds of each commit
    on_checkpoint: Callable[[float], None] | None  # seconds the writer waited for one

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]: ...

    async def drained(self) -> None: ...

    async def balance(self, user_id: str) -> int | None: ...

    async def key_spent(self, key_id: str) -> int: ...

    async def has_entry(self, request_id: str) -> bool: ...

    @property
    def writable(self) -> bool: ...

    def health(self) -> LedgerHealth: ...


@dataclass(slots=True)
class _Queued:
    entry: LedgerEntry
    future: asyncio.Future[None]
    since: float = field(default=0.0)


@dataclass(slots=True)
class _Job:
    """A store write: a function to run in a transaction of its own."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


class SqliteLedger:
    """Group-commit writer over its own sqlite3 connection, the process's one
    writer of the file: store writes (`write()`) run on it between batches.

    With `synchronous=NORMAL` (the default) a commit only appends to the WAL
    file, which takes microseconds, so batches are written on the event loop
    itself: no thread hop, and no wait for the GIL, which a writer thread must
    take back after every SQLite call while the loop is busy (each wait up to
    the interpreter's 5 ms switch interval). With FULL every commit waits for
    fsync, so batches are written in the worker thread. In both modes WAL
    checkpoints run on a separate connection in the worker thread, while the
    writer waits (see `billing.wal`). Store writes run in the worker thread
    too, so that the loop never runs a store's code.

    Another process may write the file (the `gateway` CLI beside a live server:
    `seed`, `set-provider-key`, `sync`). On the loop a write never waits for
    that process's lock: on SQLITE_BUSY the batch goes to the worker thread,
    which waits up to `busy_timeout`. `lock_waits` counts those (NORMAL mode).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 512,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
        close_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if synchronous.upper() not in {"NORMAL", "FULL"}:
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._path = path
        self._max_batch = max_batch
        self._busy_ms = max(1, round(busy_timeout * 1000))
        # A row waits for a lock at most the busy timeout; well beyond that the writer is stuck.
        self._stalled_after = busy_timeout + 5.0
        self._close_timeout = close_timeout
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._in_loop = self._synchronous == "NORMAL"
        self._db: sqlite3.Connection | None = None
        self._checkpoint_db: sqlite3.Connection | None = None
        self._wal = WalPolicy(path, checkpoint_bytes)
        self._queue: list[_Queued] = []
        self._writing: list[_Queued] = []
        self._jobs: list[_Job] = []
        self._job: _Job | None = None  # the store write being run
        self._starting = asyncio.Lock()
        self._in_thread = False  # the connection is in the worker thread: reads go there too
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._healthy = True
        self.batches = 0
        self.rows = 0
        self.failed_batches = 0
        self.failed_rows = 0
        self.writer_restarts = 0
        self.checkpoints = 0
        self.lock_waits = 0  # writes that found another process holding the lock
        self.last_error: str | None = None
        self.on_batch: Callable[[int, float], None] | None = None
        self.on_checkpoint: Callable[[float], None] | None = None

    def _open(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a commit is in the WAL file before the response's last
        # bytes leave, so a crash of this process loses no row; FULL also waits
        # for the disk (fsync) at every commit, which survives a power loss too.
        db.execute(f"PRAGMA synchronous = {self._synchronous}")
        # Checkpoints are ours (billing.wal), never one inside a commit; when this
        # connection restarts the WAL it cuts the file back to what it holds.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("PRAGMA journal_size_limit = 0")
        if self._in_loop:
            # On the loop, never wait for another writer's lock: on SQLITE_BUSY
            # the batch is handed to the worker thread, which may wait.
            db.execute(f"PRAGMA busy_timeout = {_LOOP_BUSY_MS}")
        # Checkpoints wait for readers only briefly (billing.wal sets how long).
        checkpointer = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db, self._checkpoint_db = db, checkpointer

    async def start(self) -> None:
        """Open the connections and start the writer (once: a started ledger stays)."""
        async with self._starting:
            if self._task is not None:
                return
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._open)
            except (OSError, sqlite3.Error) as exc:
                raise LedgerError(f"cannot open the ledger in {self._path}: {exc}") from exc
            self._closing = False
            self._task = loop.create_task(self._supervise())

    async def close(self) -> None:
        """Write what is queued (for at most `close_timeout`), fail what is left, stop."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(self.drained(), self._close_timeout)
            except TimeoutError:
                log.error(
                    "ledger: %d rows still unwritten after %.0f s at shutdown; failing them",
                    len(self._queue) + len(self._writing),
                    self._close_timeout,
                )
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail_all(self._writing + self._queue, "the ledger closed before the row was written")
        self._queue, self._writing = [], []
        jobs = ([self._job] if self._job else []) + self._jobs
        self._fail_jobs(jobs, LedgerError("the ledger closed before the write was made"))
        self._jobs, self._job = [], None
        loop = asyncio.get_running_loop()
        for db in (self._db, self._checkpoint_db):
            if db is not None:
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(self._executor, db.close)
        self._db = self._checkpoint_db = None
        self._executor.shutdown(wait=True)

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closing:
            future.set_exception(LedgerError("the ledger is closing"))
            return future
        self._queue.append(_Queued(entry, future, self._clock()))
        self._wake.set()
        return future

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A store write (`config_store.writes.SqliteWrites`): `fn` in a transaction
        of its own, between two batches. Starts the writer if it is not running
        yet: the store migrates the schema before the first request starts it."""
        if self._closing:
            raise LedgerError("the ledger is closing")
        await self.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(fn, future))
        self._wake.set()
        return await future

    async def drained(self) -> None:
        """Wait until every row submitted so far is written (or has failed), and
        every store write queued so far is made."""
        pending: list[asyncio.Future[Any]] = [
            item.future for item in (*self._writing, *self._queue)
        ]
        pending += [job.future for job in ([self._job] if self._job else []) + self._jobs]
        if pending:
            await asyncio.gather(*(asyncio.shield(f) for f in pending), return_exceptions=True)

    @property
    def writable(self) -> bool:
        """Rows are being written: cheap enough to ask for every request."""
        waiting = self._writing[:1] or self._queue[:1]
        oldest = self._clock() - waiting[0].since if waiting else 0.0
        stopped = self._task is not None and self._task.done()
        return self._healthy and not stopped and oldest < self._stalled_after

    def health(self) -> LedgerHealth:
        waiting = self._writing[:1] or self._queue[:1]
        oldest = self._clock() - waiting[0].since if waiting else 0.0
        return LedgerHealth(
            healthy=self.writable,
            failed_batches=self.failed_batches,
            failed_rows=self.failed_rows,
            writer_restarts=self.writer_restarts,
            last_error=self.last_error,
            queued=len(self._writing) + len(self._queue),
            oldest_queued_seconds=round(oldest, 3),
            wal_bytes=self._wal.size,
            checkpoints=self.checkpoints,
        )

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
            row: tuple[int, ...] | None = self._connection().execute(sql, args).fetchone()
            return row

        try:
            # While the worker thread waits on the connection for a lock, a read
            # on the loop would wait for it too: it queues behind in the thread.
            if self._in_loop and not self._in_thread:
                return read()
            return await asyncio.get_running_loop().run_in_executor(self._executor, read)
        except (sqlite3.Error, LedgerError) as exc:
            raise LedgerError(f"cannot read the ledger: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerError("the ledger is not open")
        return self._db

    # The writer.

    async def _supervise(self) -> None:
        """Run the writer; should it ever stop, say so loudly and start it again."""
        while True:
            try:
                await self._write_forever()
            except Exception as exc:  # the writer must outlive any bug
                self.writer_restarts += 1
                self.last_error = _describe(exc)
                log.critical("the ledger writer stopped; restarting it", exc_info=exc)
                if self._job is not None:
                    self._fail_jobs([self._job], exc)
                    self._job = None
                batch, self._writing = self._writing, []
                if batch:  # rows the writer was writing: committed or not?
                    try:
                        failures = await self._unwritten([item.entry for item in batch], exc)
                        self._account(batch, failures, 0.0)
                    except Exception:
                        self._fail_all(batch, f"ledger write failed: {_describe(exc)}")
                await asyncio.sleep(_RESTART_SECONDS)

    async def _write_forever(self) -> None:
        while True:
            self._wake.clear()
            while self._queue or self._jobs:
                if self._jobs:
                    await self._run_jobs()
                if self._queue:
                    await self._write_batch()
                await self._checkpoint_if_due()
            await self._wait_for_rows()

    async def _run_jobs(self) -> None:
        """The store writes queued so far, each in a transaction of its own in the
        worker thread. What a write raises is its caller's: it says nothing about
        whether ledger rows can be written."""
        loop = asyncio.get_running_loop()
        # Those queued so far: the ones queued meanwhile wait for the next batch.
        for _ in range(len(self._jobs)):
            job = self._jobs.pop(0)
            if job.future.done():  # its caller gave up before it began
                continue
            self._job = job
            self._in_thread = True
            try:
                result, waited = await loop.run_in_executor(self._executor, self._transact, job.fn)
            except Exception as exc:
                self._fail_jobs([job], exc)
            else:
                self.lock_waits += waited
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                self._in_thread = False
                self._job = None

    async def _wait_for_rows(self) -> None:
        if self._healthy:
            await self._wake.wait()
            return
        # While /health says 503 a load balancer may send nothing more: find out
        # without waiting for a request when the ledger can write again.
        try:
            await asyncio.wait_for(self._wake.wait(), _PROBE_SECONDS)
        except TimeoutError:
            await self._probe()

    async def _write_batch(self) -> None:
        batch = self._queue[: self._max_batch]
        del self._queue[: len(batch)]
        self._writing = batch
        entries = [item.entry for item in batch]
        began = time.perf_counter()
        try:
            failures = await self._commit(entries)
        except Exception as exc:
            log.error("ledger batch of %d rows failed: %s", len(entries), _describe(exc))
            failures = await self._unwritten(entries, exc)
        self._account(batch, failures, time.perf_counter() - began)
        self._writing = []

    async def _commit(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        loop = asyncio.get_running_loop()
        if self._in_loop:
            try:
                return self._write(entries)
            except _Busy:
                self.lock_waits += 1
                self._in_thread = True
                try:
                    return await loop.run_in_executor(
                        self._executor, self._write_patiently, entries
                    )
                finally:
                    self._in_thread = False
        return await loop.run_in_executor(self._executor, self._write_patiently, entries)

    def _account(
        self, batch: list[_Queued], failures: dict[int, Exception], seconds: float
    ) -> None:
        """Count a batch, judge the ledger's health by it, and answer its rows."""
        written = len(batch) - len(failures)
        self.batches += 1
        self.rows += written
        if failures:
            self.failed_rows += len(failures)
            first = next(iter(failures.values()))
            self.last_error = _describe(first)
            log.error(
                "ledger: %d of %d rows not written (first %s: %s)",
                len(failures),
                len(batch),
                batch[min(failures)].entry.request_id,
                self.last_error,
            )
            if not written and any(not isinstance(e, _ROW_FAULTS) for e in failures.values()):
                self.failed_batches += 1
                self._healthy = False
        if written:
            self._healthy = True
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch), seconds)
            except Exception:
                log.exception("ledger: the batch callback failed")
        for index, item in enumerate(batch):
            if item.future.done():
                continue
            error = failures.get(index)
            if error is None:
                item.future.set_result(None)
            else:
                item.future.set_exception(LedgerError(f"ledger write failed: {_describe(error)}"))

    async def _unwritten(
        self, entries: Sequence[LedgerEntry], error: Exception
    ) -> dict[int, Exception]:
        """After a failure that escaped the row-by-row writes, which rows did not
        commit (all of them, if even that cannot be read)."""
        if self._in_loop:
            return self._missing(entries, error)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._missing, entries, error
        )

    def _missing(self, entries: Sequence[LedgerEntry], error: Exception) -> dict[int, Exception]:
        try:
            db = self._connection()
            sql = "SELECT 1 FROM ledger WHERE request_id = ?"
            return {
                index: error
                for index, entry in enumerate(entries)
                if db.execute(sql, (entry.request_id,)).fetchone() is None
            }
        except Exception:
            return dict.fromkeys(range(len(entries)), error)

    def _write(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        """Write a batch as one multi-row INSERT: one statement is one transaction
        and one trip through sqlite3_step, so this thread gives up and retakes the
        GIL once per batch instead of once per row. If it fails, row by row, so
        that one bad row fails alone. Returns the failed rows' errors by index.
        Raises `_Busy` when another connection holds the lock: written again, the
        rows already in are ignored (INSERT OR IGNORE)."""
        db = self._connection()
        try:
            db.execute(_insert_many(len(entries)), [v for e in entries for v in e.row()])
            return {}
        except Exception as exc:
            _rollback(db)
            if _is_busy(exc):
                raise _Busy from exc
        failures: dict[int, Exception] = {}
        for index, entry in enumerate(entries):
            try:
                db.execute(_INSERT, entry.row())
            except Exception as exc:
                _rollback(db)
                if _is_busy(exc):
                    raise _Busy from exc
                failures[index] = exc
        return failures

    def _write_patiently(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        """In the worker thread: wait for another writer's lock as long as the busy
        timeout allows."""
        db = self._connection()
        if self._in_loop:
            db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            return self._write(entries)
        except _Busy as exc:
            # Some rows may have gone in one by one before the lock was lost.
            return self._missing(
                entries, LedgerError(f"the database stayed locked ({exc.__cause__})")
            )
        finally:
            if self._in_loop:
                with contextlib.suppress(Exception):
                    db.execute(f"PRAGMA busy_timeout = {_LOOP_BUSY_MS}")

    def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[T, bool]:
        """In the worker thread: `fn` in one write transaction; and whether it had
        to wait for another process's lock (in NORMAL mode, where it is tried
        first with the loop's short busy timeout)."""
        db = self._connection()
        try:
            return _transact(db, fn), False
        except Exception as exc:
            if not (self._in_loop and _is_busy(exc)):
                raise
        db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            return _transact(db, fn), True
        finally:
            with contextlib.suppress(Exception):
                db.execute(f"PRAGMA busy_timeout = {_LOOP_BUSY_MS}")

    async def _probe(self) -> None:
        """Take the write lock and let it go: the ledger is writable again if that works."""

        def probe() -> None:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
            finally:
                _rollback(db)

        self._in_thread = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, probe)
        except Exception as exc:
            self.last_error = _describe(exc)
            return
        finally:
            self._in_thread = False
        log.warning("ledger: writable again")
        self._healthy = True

    async def _checkpoint_if_due(self) -> None:
        if not self._wal.due():
            return

        wait_ms = self._wal.wait_ms()

        def checkpoint() -> bool:
            if self._checkpoint_db is None:
                return False
            self._checkpoint_db.execute(f"PRAGMA busy_timeout = {wait_ms}")
            busy, _, _ = self._checkpoint_db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy

        began = time.perf_counter()
        complete = False
        try:
            complete = await asyncio.get_running_loop().run_in_executor(self._executor, checkpoint)
        except Exception as exc:
            log.warning("ledger checkpoint failed: %s", _describe(exc))
        else:
            self.checkpoints += 1
            if self.on_checkpoint is not None:
                with contextlib.suppress(Exception):
                    self.on_checkpoint(time.perf_counter() - began)
        self._wal.checkpointed(complete)

    def _fail_all(self, items: list[_Queued], reason: str) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(LedgerError(reason))

    @staticmethod
    def _fail_jobs(jobs: list[_Job], error: BaseException) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)


class _Busy(Exception):
    """Another connection holds the database's write lock."""


def _is_busy(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return isinstance(exc, sqlite3.OperationalError) and code & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def _transact(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise
    return result


def _rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(Exception):
        if db.in_transaction:
            db.execute("ROLLBACK")


def _describe(exc: BaseException) -> str:
    """An error for logs and /health: its type and message, kept short."""
    text = str(exc) or "no message"
    if not isinstance(exc, (LedgerError, sqlite3.Error)):
        text = f"{type(exc).__name__}: {text}"
    return text[:300]


@functools.lru_cache(maxsize=64)
def _insert_many(rows: int) -> str:
    values = ", ".join([_ROW_MARKS] * rows)
    return f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES {values}"  # noqa: S608
