"""The ledger on Firestore: a local durable outbox, shipped in batches.

A row is first committed to a local SQLite outbox (the same group-commit
writer as the SQLite ledger, on a file of its own), and a request is answered
only after that. A shipper sends the outbox to Firestore every `flush_seconds`
in transactions of up to `_SHIP_ROWS` rows: each row becomes the document
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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import firestore
from google.cloud.firestore_v1 import AsyncClient
from google.cloud.firestore_v1.base_query import FieldFilter

from billing.ledger import LedgerEntry, LedgerError, LedgerHealth, SqliteLedger
from config_store.firestore import client

log = logging.getLogger("gateway.ledger")

_SHIP_ROWS = 240  # rows + one increment per user stay under Firestore's 500 writes
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
    usage_raw TEXT NOT NULL DEFAULT ''
);
"""
# Columns added since the outbox's first version, for an outbox file that predates them.
_OUTBOX_ADDED = (
    ("uncollected_nano", "INTEGER NOT NULL DEFAULT 0"),
    ("usage_source", "TEXT NOT NULL DEFAULT ''"),
    ("usage_raw", "TEXT NOT NULL DEFAULT ''"),
)
_ERRORS = (google_errors.GoogleAPIError, google_errors.RetryError)


def ledger_document(row: sqlite3.Row) -> dict[str, Any]:
    """An outbox row as its Firestore document (prices stay the JSON copy)."""
    return {name: row[name] for name in row.keys()}  # noqa: SIM118 (sqlite3.Row)


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
    ) -> None:
        self._project = project
        self._emulator_host = emulator_host
        self._path = outbox
        self._flush = flush_seconds
        self._writer = SqliteLedger(
            outbox, max_batch=max_batch, synchronous=synchronous, busy_timeout=busy_timeout
        )
        self._local: sqlite3.Connection | None = None
        self._db: AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # shipping and balance reads never interleave
        self._wake = asyncio.Event()
        self.on_batch: Callable[[int, float], None] | None = None  # outbox commits
        self.on_checkpoint: Callable[[float], None] | None = None  # the outbox's WAL
        self.batches = 0  # shipping transactions
        self.rows = 0  # rows shipped
        self.shipped = 0
        self.ship_failures = 0
        self.last_error: str | None = None

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
        self._local = local
        local.row_factory = sqlite3.Row
        self._writer.on_batch = self.on_batch
        self._writer.on_checkpoint = self.on_checkpoint
        await self._writer.start()
        self._db = client(self._project, self._emulator_host)
        self._task = asyncio.get_running_loop().create_task(self._ship_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._writer.close()
        with contextlib.suppress(LedgerError):
            await self._ship_all()  # what is left stays in the outbox if this fails
        if self._db is not None:
            self._db.close()  # type: ignore[no-untyped-call]
            self._db = None
        if self._local is not None:
            self._local.close()
            self._local = None

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        return self._writer.submit(entry)

    async def drained(self) -> None:
        """Every row submitted so far is in the outbox and shipped."""
        await self._writer.drained()
        await self._ship_all()

    @property
    def writable(self) -> bool:
        return self._writer.writable

    def health(self) -> LedgerHealth:
        """The outbox writer's: a request is answered once its row is in the outbox,
        so shipping failures (retried, and shown in `ship_failures`) do not make
        the ledger unhealthy."""
        return self._writer.health()

    def pending(self) -> int:
        """Rows in the outbox not yet shipped."""
        row = self._query("SELECT COUNT(*) FROM ledger").fetchone()
        return int(row[0])

    def _query(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self._local is None:
            raise LedgerError("the ledger is not started")
        try:
            return self._local.execute(sql, args)
        except sqlite3.Error as exc:
            raise LedgerError(f"the outbox cannot be read: {exc}") from exc

    async def _remote(self, work: Any) -> Any:
        if self._db is None:
            raise LedgerError("the ledger is not started")
        try:
            return await asyncio.wait_for(work(self._db), timeout=30)
        except (TimeoutError, *_ERRORS) as exc:
            raise LedgerError(f"Firestore: {exc}") from exc

    async def balance(self, user_id: str) -> int | None:
        async with self._lock:
            doc = await self._remote(lambda db: db.collection("balances").document(user_id).get())
            local = self._query(
                "SELECT COALESCE(SUM(amount_nano), 0), COUNT(*) FROM ledger WHERE user_id = ?",
                user_id,
            ).fetchone()
        if not doc.exists and not local[1]:
            return None
        remote = int((doc.to_dict() or {}).get("balance_nano", 0)) if doc.exists else 0
        return remote + int(local[0])

    async def key_spent(self, key_id: str) -> int:
        async with self._lock:
            docs = await self._remote(
                lambda db: (
                    db.collection("ledger").where(filter=FieldFilter("key_id", "==", key_id)).get()
                )
            )
            local = self._query(
                "SELECT COALESCE(SUM(amount_nano), 0) FROM ledger "
                "WHERE key_id = ? AND kind = 'charge'",
                key_id,
            ).fetchone()
        remote = sum(
            int(d.to_dict().get("amount_nano", 0))
            for d in docs
            if (d.to_dict() or {}).get("kind") == "charge"
        )
        return -(remote + int(local[0]))

    async def has_entry(self, request_id: str) -> bool:
        if self._query("SELECT 1 FROM ledger WHERE request_id = ?", request_id).fetchone():
            return True
        doc = await self._remote(lambda db: db.collection("ledger").document(request_id).get())
        return bool(doc.exists)

    async def _ship_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush)
            try:
                await self._ship_all()
            except LedgerError as exc:
                self.ship_failures += 1
                self.last_error = str(exc)
                log.warning("ledger shipping failed, will retry: %s", exc)

    async def _ship_all(self) -> None:
        while await self._ship_batch():
            pass

    async def _ship_batch(self) -> int:
        """Ship the oldest rows of the outbox; returns how many were shipped."""
        async with self._lock:
            rows = self._query(
                "SELECT * FROM ledger ORDER BY created_at, request_id LIMIT ?", _SHIP_ROWS
            ).fetchall()
            if not rows:
                return 0
            await self._remote(lambda db: _commit(db, rows))
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


async def _commit(db: AsyncClient, rows: list[sqlite3.Row]) -> None:
    refs = [db.collection("ledger").document(row["request_id"]) for row in rows]

    @firestore.async_transactional
    async def ship(transaction: Any) -> None:
        existing = {
            snapshot.id
            async for snapshot in db.get_all(refs, transaction=transaction)
            if snapshot.exists
        }
        per_user: dict[str, int] = defaultdict(int)
        for row, ref in zip(rows, refs, strict=True):
            if row["request_id"] in existing:
                continue  # shipped before (a crash after the commit): never twice
            transaction.create(ref, ledger_document(row))
            per_user[row["user_id"]] += int(row["amount_nano"])
        for user_id, amount in per_user.items():
            if amount:
                transaction.set(
                    db.collection("balances").document(user_id),
                    {"balance_nano": firestore.Increment(amount)},
                    merge=True,
                )

    await ship(db.transaction())
