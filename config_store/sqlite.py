"""The SQLite backend of `ConfigStore` (the embedded default)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from config_store.budgets import balance_alert_from_json, budget_from_json, team_from_json
from config_store.migrations import MIGRATIONS
from config_store.router_config import ConfigInvalid
from config_store.schema import (
    ApiKey,
    Catalogue,
    HistoryEntry,
    ModelConfig,
    PricePoint,
    PricingTier,
    Provider,
    User,
)
from config_store.sqlite_rows import (
    ENTITIES,
    INSERT_PRICE,
    api_key_of,
    documents_of,
    history_of,
    model_of,
    model_values,
    price_of,
    price_values,
    profiles_of,
    provider_of,
    provider_values,
    router_config_of,
    tier_values,
)
from config_store.sqlite_writes import apply_changes, apply_due_point, migrate_to, put_row
from config_store.store import Conflict, Invalid, StoreError, StoreUnavailable
from config_store.writes import SqliteWrites, StandaloneWrites

T = TypeVar("T")
log = logging.getLogger("gateway.store")


class SqliteStore:
    """Reads on an aiosqlite connection of its own; writes through the process's
    one writer (`config_store.writes`), the ledger's in the gateway.

    The reading connection is `query_only`, so a write that would go around the
    writer fails at once. In WAL mode the reads never wait for the writer, nor
    it for them. Reads take their turn on the connection (`_read`), so that the
    snapshot load's read transaction is never interleaved with another read.
    Writes are synchronous functions on the writer's connection, each run in a
    transaction of its own (`_write`)."""

    def __init__(self, path: Path, writes: SqliteWrites | None = None) -> None:
        self._path = path
        # Without a writer given (the CLI, the seed, tests), one of its own.
        self._own_writes: StandaloneWrites | None = None
        if writes is None:
            writes = self._own_writes = StandaloneWrites(path)
        self._writes = writes
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def source(self) -> str:
        return "sqlite"

    @property
    def path(self) -> Path:
        return self._path

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self._path}: {exc}") from exc
        # The writer opens the file first: it creates it and puts it in WAL mode.
        await self._transaction(lambda db: None)
        try:
            db = await aiosqlite.connect(self._path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self._path}: {exc}") from exc
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            await db.close()
            raise StoreUnavailable(f"cannot open SQLite database {self._path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        async with self._lock:  # never under a read still running
            if self._db is not None:
                db, self._db = self._db, None
                await db.close()
        if self._own_writes is not None:
            await self._own_writes.close()

    async def _read(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._lock:
            if self._db is None:
                raise StoreUnavailable("the SQLite store is not open")
            try:
                return await work(self._db)
            except ConfigInvalid as exc:
                raise Invalid(f"invalid document: {exc}", exc.param) from exc
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StoreUnavailable("the SQLite store is not open")
        return await self._transaction(fn)

    async def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` in a write transaction of its own on the writer; its errors and
        SQLite's become `StoreError`s, and a writer that cannot write makes the
        store unavailable."""
        raised: list[BaseException] = []

        def work(db: sqlite3.Connection) -> T:
            try:
                return fn(db)
            except BaseException as exc:
                raised.append(exc)
                raise

        try:
            return await self._writes.write(work)
        except StoreError:
            raise
        except ConfigInvalid as exc:
            raise Invalid(f"invalid document: {exc}", exc.param) from exc
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"SQLite: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc
        except Exception as exc:
            if raised and exc is raised[-1]:
                raise  # a bug in fn: let it show
            raise StoreUnavailable(f"the SQLite writer cannot write: {exc}") from exc

    async def migrate(self) -> list[int]:
        await self._write(
            lambda db: db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
        )
        applied = []
        for version, script in MIGRATIONS:
            if await self._write(functools.partial(migrate_to, version, script)):
                applied.append(version)
        return applied

    async def schema_version(self) -> int:
        async def work(db: aiosqlite.Connection) -> int:
            async with db.execute("SELECT max(version) FROM schema_version") as cur:
                row = await cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        return await self._read(work)

    async def load(self) -> Catalogue:
        async def rows(db: aiosqlite.Connection, sql: str) -> Iterable[sqlite3.Row]:
            async with db.execute(sql) as cur:
                return list(await cur.fetchall())

        async def work(db: aiosqlite.Connection) -> Catalogue:
            # One read transaction, so the catalogue is consistent with itself.
            await db.execute("BEGIN")
            try:
                providers = [provider_of(r) for r in await rows(db, "SELECT * FROM providers")]
                models = [model_of(r) for r in await rows(db, "SELECT * FROM model_configurations")]
                tiers = [
                    PricingTier(r["id"], r["name"], Decimal(r["markup_percent"]))
                    for r in await rows(db, "SELECT * FROM pricing_tiers")
                ]
                users = [
                    User(r["id"], r["name"], r["tier_id"])
                    for r in await rows(db, "SELECT id, name, tier_id FROM users")
                ]
                keys = [api_key_of(r) for r in await rows(db, "SELECT * FROM api_keys")]
                profile_rows = await rows(db, "SELECT model_id, data FROM model_profiles")
                config_rows = await rows(db, "SELECT data FROM router_config")
                price_rows = await rows(
                    db, "SELECT * FROM model_prices ORDER BY effective_from, id"
                )
                team_rows = await rows(db, "SELECT data FROM teams ORDER BY id")
                budget_rows = await rows(db, "SELECT data FROM budgets ORDER BY id")
                alert_rows = await rows(db, "SELECT data FROM balance_alerts ORDER BY id")
            finally:
                await db.rollback()
            return Catalogue(
                tuple(providers),
                tuple(models),
                tuple(tiers),
                tuple(users),
                tuple(keys),
                profiles=tuple(profiles_of(profile_rows)),
                router_config=router_config_of(config_rows),
                prices=tuple(price_of(row) for row in price_rows),
                teams=documents_of("team", team_rows, team_from_json),
                budgets=documents_of("budget", budget_rows, budget_from_json),
                balance_alerts=documents_of("balance_alert", alert_rows, balance_alert_from_json),
            )

        return await self._read(work)

    async def _put(self, table: str, key: str, values: dict[str, Any], overwrite: bool) -> bool:
        return await self._write(functools.partial(put_row, table, key, values, overwrite))

    async def put_provider(self, provider: Provider, *, overwrite: bool = True) -> bool:
        return await self._put("providers", "id", provider_values(provider), overwrite)

    async def put_model(self, model: ModelConfig, *, overwrite: bool = True) -> bool:
        return await self._put("model_configurations", "id", model_values(model), overwrite)

    async def put_tier(self, tier: PricingTier, *, overwrite: bool = True) -> bool:
        return await self._put("pricing_tiers", "id", tier_values(tier), overwrite)

    async def put_user(self, user: User, *, overwrite: bool = True) -> bool:
        # The balance column is not written here: only ledger rows move it.
        values = {"id": user.id, "name": user.name, "tier_id": user.tier_id}
        return await self._put("users", "id", values, overwrite)

    async def put_api_key(self, key: ApiKey, *, overwrite: bool = True) -> bool:
        values = {
            "key_hash": key.key_hash,
            "prefix": key.prefix,
            "user_id": key.user_id,
            "name": key.name,
            "revoked": int(key.revoked),
            "created_at": key.created_at.isoformat(),
            "rpm": key.rpm,
            "tpm": key.tpm,
            "allowed_models": json.dumps(list(key.allowed_models)),
            "spend_cap_nano": key.spend_cap_nano,
        }
        return await self._put("api_keys", "key_hash", values, overwrite)

    async def add_price(self, point: PricePoint) -> None:
        """Schedule a price (from its `effective_from` on); the snapshot applies it when due."""
        values = price_values(point)
        await self._write(lambda db: db.execute(INSERT_PRICE, values))

    async def prices(self, model_id: str) -> list[PricePoint]:
        """A model's price points, oldest first."""

        async def work(db: aiosqlite.Connection) -> list[PricePoint]:
            sql = "SELECT * FROM model_prices WHERE model_id = ? ORDER BY effective_from, id"
            async with db.execute(sql, (model_id,)) as cur:
                return [price_of(row) for row in await cur.fetchall()]

        return await self._read(work)

    async def apply_due_prices(self, now: datetime) -> list[HistoryEntry]:
        """Each scheduled price in force at `now` and not yet applied, written into
        its model in a transaction of its own, which first marks the point applied
        with a conditional update: a point already applied is left alone."""

        async def due(db: aiosqlite.Connection) -> list[int]:
            sql = "SELECT * FROM model_prices WHERE applied = 0 ORDER BY effective_from, id"
            async with db.execute(sql) as cur:
                return [r["id"] for r in await cur.fetchall() if price_of(r).effective_from <= now]

        entries = []
        for point_id in await self._read(due):
            try:
                entry = await self._write(functools.partial(apply_due_point, int(point_id), now))
            except StoreUnavailable:
                raise
            except StoreError as exc:  # its model's row is unusable: the point waits
                log.warning("scheduled price %s not applied: %s", point_id, exc)
                continue
            if entry is not None:
                entries.append(entry)
        return entries

    async def change(
        self,
        entity: str,
        entity_id: str,
        new: Mapping[str, Any] | None,
        *,
        actor: str,
        reason: str = "",
    ) -> HistoryEntry:
        """Write (or, with `new=None`, delete) one versioned entity and record the
        change in the history, in one transaction."""
        [entry] = await self.change_many([(entity, entity_id, new)], actor=actor, reason=reason)
        return entry

    async def change_many(
        self,
        changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        actor: str,
        reason: str = "",
    ) -> list[HistoryEntry]:
        """Several changes, all or nothing, each with its history entry. A model
        whose prices change gets a price point effective at once."""
        for entity, _, _ in changes:
            if entity not in ENTITIES:
                raise StoreError(f"unknown entity {entity!r}")

        return await self._write(functools.partial(apply_changes, changes, actor, reason))

    async def put_sync_status(self, provider: str, status: Mapping[str, Any]) -> None:
        values = (provider, json.dumps(dict(status), sort_keys=True))
        await self._write(
            lambda db: db.execute(
                "INSERT INTO sync_status (provider, data) VALUES (?, ?) "
                "ON CONFLICT(provider) DO UPDATE SET data = excluded.data",
                values,
            )
        )

    async def sync_statuses(self) -> dict[str, dict[str, Any]]:
        async def work(db: aiosqlite.Connection) -> dict[str, dict[str, Any]]:
            async with db.execute("SELECT provider, data FROM sync_status") as cur:
                return {row[0]: json.loads(row[1]) for row in await cur.fetchall()}

        return await self._read(work)

    async def history(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[HistoryEntry]:
        """Changes, newest first; `before` pages back from an entry id."""
        where, args = [], []
        for clause, value in (
            ("entity = ?", entity),
            ("entity_id = ?", entity_id),
            ("id < ?", before),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = "SELECT * FROM config_history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"

        async def work(db: aiosqlite.Connection) -> list[HistoryEntry]:
            async with db.execute(sql, (*args, limit)) as cur:
                return [history_of(row) for row in await cur.fetchall()]

        return await self._read(work)

    async def history_entry(self, entry_id: int) -> HistoryEntry | None:
        async def work(db: aiosqlite.Connection) -> HistoryEntry | None:
            sql = "SELECT * FROM config_history WHERE id = ?"
            async with db.execute(sql, (entry_id,)) as cur:
                row = await cur.fetchone()
            return None if row is None else history_of(row)

        return await self._read(work)
