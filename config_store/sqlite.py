"""The SQLite backend of `ConfigStore` (the embedded default)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from config_store.documents import (
    SCHEDULE_ACTOR,
    model_from_json,
    model_to_json,
    point_prices,
    price_point_of,
    prices_of,
    provider_from_json,
    provider_to_json,
    tier_from_json,
    tier_to_json,
)
from config_store.migrations import MIGRATIONS
from config_store.router_config import ConfigInvalid, ModelProfile, RouterConfig
from config_store.schema import (
    EPOCH,
    ApiKey,
    Catalogue,
    HistoryEntry,
    ModelConfig,
    PricePoint,
    PricingTier,
    Provider,
    User,
)
from config_store.store import Conflict, Invalid, NotFound, StoreError, StoreUnavailable
from config_store.writes import SqliteWrites, StandaloneWrites

T = TypeVar("T")
log = logging.getLogger("gateway.store")


@dataclass(frozen=True, slots=True)
class _Entity:
    """How a versioned entity maps to its table: document <-> row."""

    table: str
    key: str
    read: Callable[[sqlite3.Row], dict[str, Any]]
    write: Callable[[Mapping[str, Any]], dict[str, Any]]
    key_of: Callable[[str], str | int] = lambda entity_id: entity_id


def _data(row: sqlite3.Row) -> dict[str, Any]:
    return dict(json.loads(row["data"]))


def _entities() -> dict[str, _Entity]:
    def as_data(key: Callable[[Mapping[str, Any]], str | int], column: str) -> Any:
        return lambda doc: {column: key(doc), "data": json.dumps(dict(doc), sort_keys=True)}

    return {
        "router_config": _Entity(
            "router_config", "id", _data, as_data(lambda _: 1, "id"), lambda _: 1
        ),
        "model_profile": _Entity(
            "model_profiles", "model_id", _data, as_data(lambda d: d["model_id"], "model_id")
        ),
        "model": _Entity(
            "model_configurations",
            "model_id",
            lambda row: model_to_json(_model(row)),
            lambda doc: _model_values(model_from_json(doc, id=doc["id"], created_at=EPOCH)),
        ),
        "provider": _Entity(
            "providers",
            "id",
            lambda row: provider_to_json(_provider(row)),
            lambda doc: _provider_values(provider_from_json(doc)),
        ),
        "tier": _Entity(
            "pricing_tiers",
            "id",
            lambda row: tier_to_json(
                PricingTier(row["id"], row["name"], Decimal(row["markup_percent"]))
            ),
            lambda doc: _tier_values(tier_from_json(doc)),
        ),
    }


_ENTITIES = _entities()
_INSERT_PRICE = (
    "INSERT INTO model_prices (model_id, effective_from, input_price_per_million, "
    "output_price_per_million, cached_input_price_per_million, cache_write_price_per_million, "
    "actor, reason, recorded_at, applied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _json(document: Mapping[str, Any] | None) -> str | None:
    return None if document is None else json.dumps(dict(document), sort_keys=True)


def _price_values(point: PricePoint) -> tuple[Any, ...]:
    return (
        point.model_id,
        point.effective_from.astimezone(UTC).isoformat(),
        str(point.input_price_per_million),
        str(point.output_price_per_million),
        _text(point.cached_input_price_per_million),
        _text(point.cache_write_price_per_million),
        point.actor,
        point.reason,
        point.recorded_at.astimezone(UTC).isoformat(),
        int(bool(point.applied)),
    )


def _price(row: sqlite3.Row) -> PricePoint:
    return PricePoint(
        model_id=row["model_id"],
        effective_from=datetime.fromisoformat(row["effective_from"]),
        input_price_per_million=Decimal(row["input_price_per_million"]),
        output_price_per_million=Decimal(row["output_price_per_million"]),
        cached_input_price_per_million=_dec(row["cached_input_price_per_million"]),
        cache_write_price_per_million=_dec(row["cache_write_price_per_million"]),
        actor=row["actor"],
        reason=row["reason"],
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        applied=bool(row["applied"]),
    )


def _provider_values(provider: Provider) -> dict[str, Any]:
    return {**provider_to_json(provider), "enabled": int(provider.enabled)}


def _model_values(model: ModelConfig) -> dict[str, Any]:
    return {
        **model_to_json(model),
        "is_active": int(model.is_active),
        "created_at": model.created_at.isoformat(),
        "fallbacks": json.dumps(list(model.fallbacks)),
        "needs_price": int(model.needs_price),
        "deprecated_at": None if model.deprecated_at is None else model.deprecated_at.isoformat(),
    }


def _tier_values(tier: PricingTier) -> dict[str, Any]:
    return {"id": tier.id, "name": tier.name, "markup_percent": str(tier.markup_percent)}


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _provider(row: sqlite3.Row) -> Provider:
    return Provider(
        id=row["id"],
        kind=row["kind"],
        base_url=row["base_url"],
        api_key_env=row["api_key_env"],
        base_url_env=row["base_url_env"],
        api_key=row["api_key"],
        enabled=bool(row["enabled"]),
        display_name=row["display_name"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        fallback_priority=row["fallback_priority"],
        connect_timeout=row["connect_timeout"],
        read_timeout=row["read_timeout"],
        total_timeout=row["total_timeout"],
    )


def _model(row: sqlite3.Row) -> ModelConfig:
    return ModelConfig(
        id=row["id"],
        model_id=row["model_id"],
        provider=row["provider"],
        input_price_per_million=Decimal(row["input_price_per_million"]),
        output_price_per_million=Decimal(row["output_price_per_million"]),
        cached_input_price_per_million=_dec(row["cached_input_price_per_million"]),
        cache_write_price_per_million=_dec(row["cache_write_price_per_million"]),
        context_window_size=row["context_window_size"],
        max_output_tokens=row["max_output_tokens"],
        is_active=bool(row["is_active"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        upstream_model=row["upstream_model"],
        tokenizer=row["tokenizer"],
        note=row["note"],
        mode=row["mode"],
        fallbacks=tuple(json.loads(row["fallbacks"])),
        fallback_priority=row["fallback_priority"],
        needs_price=bool(row["needs_price"]),
        deprecated_at=None
        if row["deprecated_at"] is None
        else datetime.fromisoformat(row["deprecated_at"]),
    )


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        key_hash=row["key_hash"],
        prefix=row["prefix"],
        user_id=row["user_id"],
        name=row["name"],
        revoked=bool(row["revoked"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        allowed_models=tuple(json.loads(row["allowed_models"])),
        spend_cap_nano=row["spend_cap_nano"],
    )


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
            if await self._write(functools.partial(_migrate_to, version, script)):
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
                providers = [_provider(r) for r in await rows(db, "SELECT * FROM providers")]
                models = [_model(r) for r in await rows(db, "SELECT * FROM model_configurations")]
                tiers = [
                    PricingTier(r["id"], r["name"], Decimal(r["markup_percent"]))
                    for r in await rows(db, "SELECT * FROM pricing_tiers")
                ]
                users = [
                    User(r["id"], r["name"], r["tier_id"])
                    for r in await rows(db, "SELECT id, name, tier_id FROM users")
                ]
                keys = [_api_key(r) for r in await rows(db, "SELECT * FROM api_keys")]
                profile_rows = await rows(db, "SELECT model_id, data FROM model_profiles")
                config_rows = await rows(db, "SELECT data FROM router_config")
                price_rows = await rows(
                    db, "SELECT * FROM model_prices ORDER BY effective_from, id"
                )
            finally:
                await db.rollback()
            return Catalogue(
                tuple(providers),
                tuple(models),
                tuple(tiers),
                tuple(users),
                tuple(keys),
                profiles=tuple(_profiles(profile_rows)),
                router_config=_router_config(config_rows),
                prices=tuple(_price(row) for row in price_rows),
            )

        return await self._read(work)

    async def _put(self, table: str, key: str, values: dict[str, Any], overwrite: bool) -> bool:
        """Insert a row, or update it in place (an upsert, never a delete-and-insert,
        which would cascade to rows that refer to it)."""
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        if overwrite:
            updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != key)
            conflict = f"ON CONFLICT({key}) DO UPDATE SET {updates}"
        else:
            conflict = f"ON CONFLICT({key}) DO NOTHING"
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) {conflict}"  # noqa: S608
        return await self._write(lambda db: db.execute(sql, tuple(values.values())).rowcount > 0)

    async def put_provider(self, provider: Provider, *, overwrite: bool = True) -> bool:
        return await self._put("providers", "id", _provider_values(provider), overwrite)

    async def put_model(self, model: ModelConfig, *, overwrite: bool = True) -> bool:
        return await self._put("model_configurations", "id", _model_values(model), overwrite)

    async def put_tier(self, tier: PricingTier, *, overwrite: bool = True) -> bool:
        return await self._put("pricing_tiers", "id", _tier_values(tier), overwrite)

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
        values = _price_values(point)
        await self._write(lambda db: db.execute(_INSERT_PRICE, values))

    async def prices(self, model_id: str) -> list[PricePoint]:
        """A model's price points, oldest first."""

        async def work(db: aiosqlite.Connection) -> list[PricePoint]:
            sql = "SELECT * FROM model_prices WHERE model_id = ? ORDER BY effective_from, id"
            async with db.execute(sql, (model_id,)) as cur:
                return [_price(row) for row in await cur.fetchall()]

        return await self._read(work)

    async def apply_due_prices(self, now: datetime) -> list[HistoryEntry]:
        """Each scheduled price in force at `now` and not yet applied, written into
        its model in a transaction of its own, which first marks the point applied
        with a conditional update: a point already applied is left alone."""

        async def due(db: aiosqlite.Connection) -> list[int]:
            sql = "SELECT * FROM model_prices WHERE applied = 0 ORDER BY effective_from, id"
            async with db.execute(sql) as cur:
                return [r["id"] for r in await cur.fetchall() if _price(r).effective_from <= now]

        def apply(point_id: int, db: sqlite3.Connection) -> HistoryEntry | None:
            claimed = db.execute(
                "UPDATE model_prices SET applied = 1 WHERE id = ? AND applied = 0", (point_id,)
            )
            if not claimed.rowcount:
                return None
            row = _one(db, "SELECT * FROM model_prices WHERE id = ?", point_id)
            return None if row is None else _apply_point(db, _price(row), now)

        entries = []
        for point_id in await self._read(due):
            try:
                entry = await self._write(functools.partial(apply, int(point_id)))
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
            if entity not in _ENTITIES:
                raise StoreError(f"unknown entity {entity!r}")

        def work(db: sqlite3.Connection) -> list[HistoryEntry]:
            at = datetime.now(UTC)
            return [
                _apply_change(db, entity, entity_id, new, actor, reason, at)
                for entity, entity_id, new in changes
            ]

        return await self._write(work)

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
                return [_history(row) for row in await cur.fetchall()]

        return await self._read(work)

    async def history_entry(self, entry_id: int) -> HistoryEntry | None:
        async def work(db: aiosqlite.Connection) -> HistoryEntry | None:
            sql = "SELECT * FROM config_history WHERE id = ?"
            async with db.execute(sql, (entry_id,)) as cur:
                row = await cur.fetchone()
            return None if row is None else _history(row)

        return await self._read(work)


def _one(db: sqlite3.Connection, sql: str, *args: Any) -> sqlite3.Row | None:
    """One row by name (the writer's connection gives tuples to the ledger)."""
    cur = db.cursor()
    cur.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cur.execute(sql, args).fetchone()
    return row


def _migrate_to(version: int, script: str, db: sqlite3.Connection) -> bool:
    """One migration, unless it is in already (another process may have applied
    it meanwhile). Statement by statement: `executescript` would commit the
    writer's transaction first."""
    if db.execute("SELECT 1 FROM schema_version WHERE version = ?", (version,)).fetchone():
        return False
    for statement in _statements(script):
        db.execute(statement)
    db.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (version,))
    return True


def _statements(script: str) -> Iterable[str]:
    """A script's statements (a trigger's body keeps its semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"an incomplete statement in a migration: {pending.strip()[:80]!r}")


def _record_price(
    db: sqlite3.Connection,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    at: datetime,
    actor: str,
    reason: str,
) -> None:
    """A price point for a model's new prices; the first change of a model that
    had none also records the prices it had since it was created."""
    if old is not None:
        sql = "SELECT 1 FROM model_prices WHERE model_id = ? LIMIT 1"
        if db.execute(sql, (new["model_id"],)).fetchone() is None:
            since = datetime.fromisoformat(str(old["created_at"]).replace("Z", "+00:00"))
            first = price_point_of(old, since, "", "created")
            db.execute(_INSERT_PRICE, _price_values(first))
    db.execute(_INSERT_PRICE, _price_values(price_point_of(new, at, actor, reason)))


def _apply_point(db: sqlite3.Connection, point: PricePoint, at: datetime) -> HistoryEntry | None:
    """A scheduled price written into its model (None if the model is gone)."""
    row = _one(db, "SELECT * FROM model_configurations WHERE model_id = ?", point.model_id)
    if row is None:
        return None
    document = {**model_to_json(_model(row)), **point_prices(point)}
    reason = point.reason or f"scheduled price from {point.effective_from.isoformat()}"
    return _apply_change(
        db, "model", point.model_id, document, SCHEDULE_ACTOR, reason, at, record_price=False
    )


def _apply_change(
    db: sqlite3.Connection,
    entity: str,
    entity_id: str,
    new: Mapping[str, Any] | None,
    actor: str,
    reason: str,
    at: datetime,
    *,
    record_price: bool = True,
) -> HistoryEntry:
    kind = _ENTITIES[entity]
    key = kind.key_of(entity_id)
    row = _one(db, f"SELECT * FROM {kind.table} WHERE {kind.key} = ?", key)  # noqa: S608
    old = None if row is None else kind.read(row)
    if old is None and new is None:
        raise NotFound(f"{entity} {entity_id!r} does not exist")
    if new is None:
        db.execute(f"DELETE FROM {kind.table} WHERE {kind.key} = ?", (key,))  # noqa: S608
    else:
        values = kind.write(new)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != kind.key)
        db.execute(
            f"INSERT INTO {kind.table} ({columns}) VALUES ({marks}) "  # noqa: S608
            f"ON CONFLICT({kind.key}) DO UPDATE SET {updates}",
            tuple(values.values()),
        )
        if record_price and entity == "model" and prices_of(old) != prices_of(new):
            _record_price(db, old, new, at, actor, reason)
    action = "create" if old is None else "delete" if new is None else "update"
    document = None if new is None else dict(new)
    cur = db.execute(
        "INSERT INTO config_history (entity, entity_id, action, actor, reason, old, new, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (entity, entity_id, action, actor, reason, _json(old), _json(document), at.isoformat()),
    )
    return HistoryEntry(
        int(cur.lastrowid or 0), entity, entity_id, action, actor, reason, old, document, at
    )


def _doc(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def _history(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        action=row["action"],
        actor=row["actor"],
        reason=row["reason"],
        old=_doc(row["old"]),
        new=_doc(row["new"]),
        at=datetime.fromisoformat(row["at"]),
    )


def _profiles(rows: Iterable[sqlite3.Row]) -> Iterable[ModelProfile]:
    """Profiles as stored; one that no longer validates is skipped (and logged),
    so that a bad row cannot stop the whole catalogue from loading."""
    for row in rows:
        try:
            yield ModelProfile.from_json(row["model_id"], json.loads(row["data"]))
        except (ConfigInvalid, ValueError) as exc:
            log.warning("skipping the invalid profile of %s: %s", row["model_id"], exc)


def _router_config(rows: Iterable[sqlite3.Row]) -> RouterConfig | None:
    for row in rows:
        try:
            return RouterConfig.from_json(json.loads(row["data"]))
        except (ConfigInvalid, ValueError) as exc:
            log.warning("ignoring the invalid router config: %s", exc)
    return None
