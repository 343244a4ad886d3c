"""The ledger on Firestore: a local durable outbox, shipped in batches.

A row is first committed to a local SQLite outbox (the same group-commit
writer as the SQLite ledger, on a file of its own), and a request is answered
only after that. A shipper sends the outbox to Firestore every `flush_seconds`
in transactions of up to `SHIP_ROWS` rows: each row becomes the document
`ledger/{request_id}` (created only if it does not exist) and each user's
balance, `balances/{user_id}`, moves by one server-side `Increment` of the
sum of its new rows (a collection apart from `users`, so that the config
listeners do not fire on every flush). Only
after the transaction commits are the rows deleted from the outbox.

So a crash loses nothing (the outbox is on disk and drains at the next
start), and a replay never double-charges (a row whose document exists is
skipped, its amount not incremented again). A user's balance document takes
one write per flush per instance, well within Firestore's one sustained
write per second per document.

A balance read here is Firestore's balance plus this instance's rows not yet
shipped. See the README ("Scaling out") for the overspend bound this gives
across instances.

Every call to Firestore is bounded by `timeout` (reads on the request path
include their wait for a shipment in progress), and whatever the client raises
becomes a `LedgerError` here. The shipper (`ship_forever`, run under the
lifespan's supervisor) retries any failure with a backoff, counts it and keeps
the last error; `shipping()` says how long the oldest unshipped row has waited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from google.cloud.firestore_v1 import AsyncClient
from google.cloud.firestore_v1.base_query import FieldFilter

from billing.firestore_shipment import SHIP_ROWS, balance_documents, commit_rows
from billing.ledger_types import LedgerEntry, LedgerError, LedgerHealth
from billing.sqlite_ledger import SqliteLedger
from billing.subjects import SUBJECT_COLUMNS, spent_query, subject_values
from config_store.firestore_client import TimeLimit, client, describe
from config_store.reachability import Reachability

log = logging.getLogger("gateway.ledger")
T = TypeVar("T")

_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    request_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_nano INTEGER NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    key_prefix TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    prices TEXT NOT NULL DEFAULT '{}',
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    key_id TEXT NOT NULL DEFAULT '',
    uncollected_nano INTEGER NOT NULL DEFAULT 0,
    usage_source TEXT NOT NULL DEFAULT '',
    usage_raw TEXT NOT NULL DEFAULT '',
    team_id TEXT NOT NULL DEFAULT '',
    paid_by TEXT NOT NULL DEFAULT '',
    end_user TEXT NOT NULL DEFAULT ''
);
"""
# Columns added since the outbox's first version, for an outbox file that predates them.
_OUTBOX_ADDED = (
    ("uncollected_nano", "INTEGER NOT NULL DEFAULT 0"),
    ("usage_source", "TEXT NOT NULL DEFAULT ''"),
    ("usage_raw", "TEXT NOT NULL DEFAULT ''"),
    ("team_id", "TEXT NOT NULL DEFAULT ''"),
    ("paid_by", "TEXT NOT NULL DEFAULT ''"),
    ("end_user", "TEXT NOT NULL DEFAULT ''"),
)


@dataclass(frozen=True, slots=True)
class Shipping:
    """How the outbox is shipping, for /health and /metrics."""

    pending: int  # rows in the outbox
    oldest_unshipped_seconds: float  # 0 with an empty outbox
    shipped: int  # rows shipped since the start
    batches: int
    failures: int  # shipping passes that failed
    last_error: str | None


class FirestoreLedger:
    def __init__(
        self,
        project: str,
        emulator_host: str,
        outbox: Path,
        *,
        flush_seconds: float = 1.0,
        max_batch: int = 512,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        timeout: float = 5.0,
        max_backoff: float = 5.0,
        reach: Reachability | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._project = project
        self._emulator_host = emulator_host
        self._path = outbox
        self._flush = flush_seconds
        self._max_backoff = max(max_backoff, flush_seconds)
        self._limit = TimeLimit(timeout)
        self._reach = reach
        self._clock = clock
        self._writer = SqliteLedger(
            outbox, max_batch=max_batch, synchronous=synchronous, busy_timeout=busy_timeout
        )
        self._local: sqlite3.Connection | None = None
        self._db: AsyncClient | None = None
        self._lock = asyncio.Lock()  # shipping and balance reads never interleave
        # Every row committed to the outbox before this moment has been shipped.
        self._shipped_before = clock()
        self.on_batch: Callable[[int, float], None] | None = None  # outbox commits
        self.on_checkpoint: Callable[[float], None] | None = None  # the outbox's WAL
        self.batches = 0  # shipping transactions
        self.rows = 0  # rows shipped
        self.shipped = 0
        self.ship_failures = 0
        self.last_error: str | None = None

    @property
    def started(self) -> bool:
        return self._local is not None

    async def start(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            local = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            local.execute("PRAGMA journal_mode = WAL")
            local.execute("PRAGMA busy_timeout = 5000")
            local.executescript(_OUTBOX_SCHEMA)
            present = {row[1] for row in local.execute("PRAGMA table_info(ledger)")}
            for name, declaration in _OUTBOX_ADDED:
                if name not in present:
                    local.execute(f"ALTER TABLE ledger ADD COLUMN {name} {declaration}")
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the outbox {self._path}: {exc}") from exc
        local.row_factory = sqlite3.Row
        self._writer.on_batch = self.on_batch
        self._writer.on_checkpoint = self.on_checkpoint
        await self._writer.start()
        self._db = client(self._project, self._emulator_host)
        self._shipped_before = self._clock()  # rows left by an earlier run wait from now
        self._local = local

    async def close(self) -> None:
        """Write what is queued to the outbox, ship what can be shipped within the
        timeout (the rest waits in the outbox for the next start), and stop."""
        await self._writer.close()
        if self._local is not None and self._db is not None:
            try:
                await self._limit.run(self._ship_pass())
            except Exception as exc:
                log.warning(
                    "ledger: %d rows stay in the outbox for the next start: %s",
                    self.pending(),
                    describe(exc),
                )
        await self._limit.cancel_late()
        if self._db is not None:
            self._db.close()  # type: ignore[no-untyped-call]
            self._db = None
        if self._local is not None:
            self._local.close()
            self._local = None

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        return self._writer.submit(entry)

    async def committed(self) -> None:
        """Every row submitted so far is in the outbox (or has failed)."""
        await self._writer.drained()

    async def drained(self) -> None:
        """Every row submitted so far is in the outbox and shipped."""
        await self._writer.drained()
        await self._ship_pass()

    @property
    def writable(self) -> bool:
        return self._writer.writable

    def health(self) -> LedgerHealth:
        """The outbox writer's: a request is answered once its row is in the outbox;
        how shipping goes is `shipping()`."""
        return self._writer.health()

    def pending(self) -> int:
        """Rows in the outbox not yet shipped."""
        row = self._query("SELECT COUNT(*) FROM ledger").fetchone()
        return int(row[0])

    def oldest_unshipped_seconds(self) -> float:
        """How long the oldest row of the outbox has waited to be shipped, at most
        (0 with an empty outbox): every row older than the start of the last
        shipping pass that succeeded has been shipped."""
        if self._query("SELECT 1 FROM ledger LIMIT 1").fetchone() is None:
            return 0.0
        return max(self._clock() - self._shipped_before, 0.0)

    def shipping(self) -> Shipping:
        pending, oldest, error = 0, 0.0, self.last_error
        if self.started:
            try:
                pending, oldest = self.pending(), round(self.oldest_unshipped_seconds(), 3)
            except LedgerError as exc:  # shown, not raised: /health must answer
                pending, error = -1, str(exc)
        return Shipping(
            pending=pending,
            oldest_unshipped_seconds=oldest,
            shipped=self.shipped,
            batches=self.batches,
            failures=self.ship_failures,
            last_error=error,
        )

    def _query(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self._local is None:
            raise LedgerError("the ledger is not started")
        try:
            return self._local.execute(sql, args)
        except sqlite3.Error as exc:
            raise LedgerError(f"the outbox cannot be read: {exc}") from exc

    async def _remote(
        self,
        operation: str,
        work: Callable[[AsyncClient], Awaitable[T]],
        seconds: float | None = None,
    ) -> T:
        """One call to Firestore, within the timeout (or `seconds`); whatever the
        client raises (its API errors, a transaction's ValueError, a timeout) is
        a LedgerError, and the outcome is reported to the reachability record."""
        if self._db is None:
            raise LedgerError("the ledger is not started")
        try:
            result = await self._limit.run(work(self._db), seconds)
        except Exception as exc:
            error = describe(exc)
            if self._reach is not None:
                self._reach.failed(operation, error)
            raise LedgerError(f"Firestore ({operation}): {error}") from exc
        if self._reach is not None:
            self._reach.succeeded(operation)
        return result

    async def _locked_read(self, read: Callable[[float], Awaitable[T]]) -> T:
        """A read that waits for a shipment in progress: the wait and the read
        (given the time left) within the timeout in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limit.seconds
        try:
            async with asyncio.timeout_at(deadline):
                await self._lock.acquire()
        except TimeoutError as exc:
            raise LedgerError(
                f"Firestore: a shipment held the ledger for over {self._limit.seconds:g} s"
            ) from exc
        try:
            return await read(max(deadline - loop.time(), 0.001))
        finally:
            self._lock.release()

    async def balance(self, user_id: str) -> int | None:
        """Firestore's balance plus the rows not yet shipped; 0 for a user without a
        balance document (one created before the documents were, or never credited)."""
        return (await self.balances([user_id]))[user_id]

    async def balances(self, user_ids: Sequence[str]) -> dict[str, int]:
        """Several balances in one read. With no user, one document is still read,
        so that a resync always finds out whether the store answers."""
        wanted = list(dict.fromkeys(user_ids))

        async def read(seconds: float) -> tuple[dict[str, int], dict[str, int]]:
            def fetch(db: AsyncClient) -> Awaitable[dict[str, int]]:
                return balance_documents(db, wanted)

            remote = await self._remote("balances", fetch, seconds)
            local = {
                row[0]: int(row[1])
                for row in self._query(
                    "SELECT CASE paid_by WHEN 'team' THEN 'team:' || team_id ELSE user_id END "
                    "AS account, COALESCE(SUM(amount_nano), 0) FROM ledger GROUP BY account"
                )
            }
            return remote, local

        remote, local = await self._locked_read(read)
        return {user: remote.get(user, 0) + local.get(user, 0) for user in wanted}

    async def spent(self, scope: str, subject: str, since: str) -> int:
        """Firestore's charges of `subject` from `since` on (a composite index, see
        the README), plus the outbox's."""
        values = subject_values(scope, subject)

        async def read(seconds: float) -> tuple[list[Any], int]:
            def fetch(db: AsyncClient) -> Awaitable[list[Any]]:
                query: Any = db.collection("ledger")
                for column, value in zip(SUBJECT_COLUMNS[scope], values, strict=True):
                    query = query.where(filter=FieldFilter(column, "==", value))
                if since:
                    query = query.where(filter=FieldFilter("created_at", ">=", since))
                return query.get()  # type: ignore[no-any-return]

            docs = await self._remote("spent", fetch, seconds)
            sql, args = spent_query(scope, subject, since)
            return docs, int(self._query(sql, *args).fetchone()[0])

        docs, local = await self._locked_read(read)
        rows = [d.to_dict() or {} for d in docs]
        return local - sum(int(r.get("amount_nano", 0)) for r in rows if r.get("kind") == "charge")

    async def has_entry(self, request_id: str) -> bool:
        if self._query("SELECT 1 FROM ledger WHERE request_id = ?", request_id).fetchone():
            return True

        def fetch(db: AsyncClient) -> Awaitable[Any]:
            return db.collection("ledger").document(request_id).get()

        doc = await self._remote("has_entry", fetch)
        return bool(doc.exists)

    async def ship_forever(self) -> None:
        """Ship the outbox every flush interval until cancelled. A pass that fails,
        whatever the error, is counted and logged, and tried again after a backoff
        that doubles up to `max_backoff` (so that a store that is back is found
        soon), then goes back to the flush interval."""
        wait = self._flush
        while True:
            await asyncio.sleep(wait)
            if not self.started:
                continue
            try:
                await self._ship_pass()
            except Exception as exc:
                self.ship_failures += 1
                self.last_error = describe(exc.__cause__ or exc)
                wait = min(wait * 2, self._max_backoff)
                log.warning("ledger shipping failed, retrying in %.1f s: %s", wait, self.last_error)
            else:
                wait = self._flush

    async def _ship_pass(self) -> None:
        """Ship every row that is in the outbox now, oldest first. Rows committed
        meanwhile wait for the next pass, so that a pass ends under any load."""
        began = self._clock()
        waiting = self.pending()
        for _ in range(math.ceil(waiting / SHIP_ROWS)):
            if not await self._ship_batch():
                break
        self._shipped_before = max(self._shipped_before, began)

    async def _ship_batch(self) -> int:
        """Ship the oldest rows of the outbox (in commit order); returns how many."""
        async with self._lock:
            rows = self._query(
                "SELECT rowid, * FROM ledger ORDER BY rowid LIMIT ?", SHIP_ROWS
            ).fetchall()
            if not rows:
                return 0

            def commit(db: AsyncClient) -> Awaitable[None]:
                return commit_rows(db, rows)

            await self._remote("shipping", commit)
            marks = ", ".join("?" for _ in rows)
            self._query(
                f"DELETE FROM ledger WHERE request_id IN ({marks})",  # noqa: S608
                *(row["request_id"] for row in rows),
            )
            self.shipped += len(rows)
            self.batches += 1
            self.rows += len(rows)
            self.last_error = None
            return len(rows)
