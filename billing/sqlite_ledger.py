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
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from billing.checkpoints import Checkpoints
from billing.ledger_types import LedgerEntry, LedgerError, LedgerHealth
from billing.sqlite_writes import Busy, WriterConnection, describe
from billing.subjects import spent_query
from billing.wal import CHECKPOINT_BYTES, WalPolicy, kept_bytes
from billing.writer_queues import QueuedRow, RowQueue, StoreJobs, answer_rows, fail_rows
from billing.writer_record import WriterRecord

T = TypeVar("T")
log = logging.getLogger("gateway.ledger")


# While the last batch failed, how often the writer checks that it could write again.
_PROBE_SECONDS = 1.0
# A pause before a stopped writer is restarted, so that a writer that keeps
# failing does not spin.
_RESTART_SECONDS = 0.05


class SqliteLedger:
    """Group-commit writer over its own sqlite3 connection, the process's one
    writer of the file: store writes (`write()`) run on it between batches.

    With `synchronous=NORMAL` (the default) a commit only appends to the WAL
    file, which takes microseconds, so batches are written on the event loop
    itself: no thread hop, and no wait for the GIL, which a writer thread must
    take back after every SQLite call while the loop is busy (each wait up to
    the interpreter's 5 ms switch interval). With FULL every commit waits for
    fsync, so batches are written in the worker thread. In both modes WAL
    checkpoints run on a separate connection, their first phase while the
    writer goes on, their second while it waits (`billing.checkpoints`).
    Store writes run in the worker thread too, so that the loop never runs a
    store's code.

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
        self._conn = WriterConnection(
            path,
            synchronous=self._synchronous,
            busy_ms=self._busy_ms,
            in_loop=self._in_loop,
            wal_kept_bytes=kept_bytes(checkpoint_bytes),
        )
        self._wal = WalPolicy(path, checkpoint_bytes)
        self._rows = RowQueue(clock)
        self._jobs = StoreJobs()
        self._starting = asyncio.Lock()
        self._in_thread = False  # the connection is in the worker thread: reads go there too
        self._wake = asyncio.Event()
        self._checkpoints = Checkpoints(self._conn, self._wal, self._executor, self._wake.set)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._record = WriterRecord()
        self.batches = 0
        self.rows = 0
        self.lock_waits = 0  # writes that found another process holding the lock
        self.on_batch: Callable[[int, float], None] | None = None
        self.on_checkpoint: Callable[[float], None] | None = None

    async def start(self) -> None:
        """Open the connections and start the writer (once: a started ledger stays)."""
        async with self._starting:
            if self._task is not None:
                return
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._conn.open)
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
                    len(self._rows),
                    self._close_timeout,
                )
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._checkpoints.close()
        self._rows.fail_all("the ledger closed before the row was written")
        self._jobs.fail_all(LedgerError("the ledger closed before the write was made"))
        loop = asyncio.get_running_loop()
        for db in (self._conn.db, self._conn.checkpoint_db):
            if db is not None:
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(self._executor, db.close)
        self._conn.db = self._conn.checkpoint_db = None
        self._executor.shutdown(wait=True)

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closing:
            future.set_exception(LedgerError("the ledger is closing"))
            return future
        self._rows.add(entry, future)
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
        self._jobs.add(fn, future)
        self._wake.set()
        return await future

    async def drained(self) -> None:
        """Wait until every row submitted so far is written (or has failed), and
        every store write queued so far is made."""
        pending: list[asyncio.Future[Any]] = [*self._rows.futures(), *self._jobs.futures()]
        if pending:
            await asyncio.gather(*(asyncio.shield(f) for f in pending), return_exceptions=True)

    async def committed(self) -> None:
        await self.drained()

    @property
    def writable(self) -> bool:
        """Rows are being written: cheap enough to ask for every request."""
        oldest = self._rows.oldest_seconds()
        stopped = self._task is not None and self._task.done()
        return self._record.healthy and not stopped and oldest < self._stalled_after

    def health(self) -> LedgerHealth:
        oldest = self._rows.oldest_seconds()
        return self._record.health(
            writable=self.writable,
            queued=len(self._rows),
            oldest_seconds=oldest,
            wal_bytes=self._wal.size,
        )

    async def balance(self, user_id: str) -> int | None:
        """A user's balance, or a team wallet's ("team:<id>": 0 before its first row)."""
        if user_id.startswith("team:"):
            sql = "SELECT balance_nano FROM team_balances WHERE team_id = ?"
            row = await self._read_one(sql, user_id.removeprefix("team:"))
            return 0 if row is None else int(row[0])
        row = await self._read_one("SELECT balance_nano FROM users WHERE id = ?", user_id)
        return None if row is None else int(row[0])

    async def spent(self, scope: str, subject: str, since: str) -> int:
        sql, args = spent_query(scope, subject, since)
        row = await self._read_one(sql, *args)
        return int(row[0]) if row else 0

    async def has_entry(self, request_id: str) -> bool:
        return (
            await self._read_one("SELECT 1 FROM ledger WHERE request_id = ?", request_id)
            is not None
        )

    async def _read_one(self, sql: str, *args: str) -> tuple[int, ...] | None:
        try:
            # While the worker thread waits on the connection for a lock, a read
            # on the loop would wait for it too: it queues behind in the thread.
            if self._in_loop and not self._in_thread:
                return self._conn.read_one(sql, args)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._conn.read_one, sql, args)
        except (sqlite3.Error, LedgerError) as exc:
            raise LedgerError(f"cannot read the ledger: {exc}") from exc

    # The writer.

    async def _supervise(self) -> None:
        """Run the writer; should it ever stop, say so loudly and start it again."""
        while True:
            try:
                await self._write_forever()
            except Exception as exc:  # the writer must outlive any bug
                self._record.restarted(exc)
                log.critical("the ledger writer stopped; restarting it", exc_info=exc)
                self._jobs.fail_running(exc)
                batch = self._rows.take_writing()
                if batch:  # rows the writer was writing: committed or not?
                    try:
                        failures = await self._unwritten([item.entry for item in batch], exc)
                        self._account(batch, failures)
                        self._measured(len(batch), 0.0)
                    except Exception:
                        fail_rows(batch, f"ledger write failed: {describe(exc)}")
                await asyncio.sleep(_RESTART_SECONDS)

    async def _write_forever(self) -> None:
        while True:
            self._wake.clear()
            while self._rows.waiting or self._jobs.queued:
                if self._jobs.queued:
                    await self._jobs.run(self._transact_in_thread)
                    self._wal.wrote()
                if self._rows.waiting:
                    await self._write_batch()
                await self._checkpoint_if_due()
            if self._checkpoints.copied:
                await self._checkpoint_if_due()  # idle: restart the WAL now
            await self._wait_for_rows()

    async def _transact_in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A store write in the worker thread. What it raises is its caller's: it
        says nothing about whether ledger rows can be written."""
        self._in_thread = True
        try:
            result, waited = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._conn.transact, fn
            )
        finally:
            self._in_thread = False
        self.lock_waits += waited
        return result

    async def _wait_for_rows(self) -> None:
        if self._record.healthy:
            await self._wake.wait()
            return
        # While /health says 503 a load balancer may send nothing more: find out
        # without waiting for a request when the ledger can write again.
        try:
            await asyncio.wait_for(self._wake.wait(), _PROBE_SECONDS)
        except TimeoutError:
            await self._probe()

    async def _write_batch(self) -> None:
        batch = self._rows.take(self._max_batch)
        entries = [item.entry for item in batch]
        began = time.perf_counter()
        try:
            failures = await self._commit(entries)
        except Exception as exc:
            log.error("ledger batch of %d rows failed: %s", len(entries), describe(exc))
            failures = await self._unwritten(entries, exc)
        seconds = time.perf_counter() - began
        self._account(batch, failures)
        self._rows.take_writing()
        self._wal.wrote(len(batch) - len(failures))
        # The requests whose rows are answered go on first: the writer's own
        # bookkeeping (metrics, the checkpoint's turn) is not theirs to wait for.
        await asyncio.sleep(0)
        self._measured(len(batch), seconds)

    async def _commit(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        loop = asyncio.get_running_loop()
        if self._in_loop:
            try:
                return self._conn.write(entries)
            except Busy:
                self.lock_waits += 1
                self._in_thread = True
                try:
                    return await loop.run_in_executor(
                        self._executor, self._write_patiently, entries
                    )
                finally:
                    self._in_thread = False
        return await loop.run_in_executor(self._executor, self._write_patiently, entries)

    def _account(self, batch: list[QueuedRow], failures: dict[int, Exception]) -> None:
        """Count a batch, judge the ledger's health by it, and answer its rows."""
        written = len(batch) - len(failures)
        self.batches += 1
        self.rows += written
        self._record.batch(batch, failures)
        answer_rows(batch, failures)

    def _measured(self, rows: int, seconds: float) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(rows, seconds)
            except Exception:
                log.exception("ledger: the batch callback failed")

    async def _unwritten(
        self, entries: Sequence[LedgerEntry], error: Exception
    ) -> dict[int, Exception]:
        """After a failure that escaped the row-by-row writes, which rows did not
        commit (all of them, if even that cannot be read)."""
        if self._in_loop:
            return self._conn.missing(entries, error)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._conn.missing, entries, error
        )

    def _write_patiently(self, entries: Sequence[LedgerEntry]) -> dict[int, Exception]:
        return self._conn.write_patiently(entries)

    async def _probe(self) -> None:
        """Take the write lock and let it go: the ledger is writable again if that works."""

        self._in_thread = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.probe)
        except Exception as exc:
            self._record.last_error = describe(exc)
            return
        finally:
            self._in_thread = False
        log.warning("ledger: writable again")
        self._record.healthy = True

    async def _checkpoint_if_due(self) -> None:
        stopped = await self._checkpoints.step()
        if stopped is not None:
            self._record.checkpoints += 1
            if self.on_checkpoint is not None:
                with contextlib.suppress(Exception):
                    self.on_checkpoint(stopped)
