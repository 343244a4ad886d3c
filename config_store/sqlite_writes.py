"""The SQLite store's writes: synchronous, on the writer's connection, each
inside the transaction of its own that `SqliteStore._write` gives it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from config_store.documents import (
    SCHEDULE_ACTOR,
    model_to_json,
    point_prices,
    price_point_of,
    prices_of,
)
from config_store.schema import HistoryEntry, PricePoint
from config_store.sqlite_rows import (
    ENTITIES,
    INSERT_PRICE,
    json_text,
    model_of,
    price_of,
    price_values,
)
from config_store.store import NotFound


def put_row(
    table: str, key: str, values: Mapping[str, Any], overwrite: bool, db: sqlite3.Connection
) -> bool:
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
    return db.execute(sql, tuple(values.values())).rowcount > 0


def apply_changes(
    changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
    actor: str,
    reason: str,
    db: sqlite3.Connection,
) -> list[HistoryEntry]:
    at = datetime.now(UTC)
    return [
        apply_change(db, entity, entity_id, new, actor, reason, at)
        for entity, entity_id, new in changes
    ]


def apply_due_point(point_id: int, now: datetime, db: sqlite3.Connection) -> HistoryEntry | None:
    """Mark a scheduled price applied, with a conditional update, and write it into
    its model; a point already applied is left alone."""
    claimed = db.execute(
        "UPDATE model_prices SET applied = 1 WHERE id = ? AND applied = 0", (point_id,)
    )
    if not claimed.rowcount:
        return None
    row = one_row(db, "SELECT * FROM model_prices WHERE id = ?", point_id)
    return None if row is None else apply_point(db, price_of(row), now)


def one_row(db: sqlite3.Connection, sql: str, *args: Any) -> sqlite3.Row | None:
    """One row by name (the writer's connection gives tuples to the ledger)."""
    cur = db.cursor()
    cur.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cur.execute(sql, args).fetchone()
    return row


def migrate_to(version: int, script: str, db: sqlite3.Connection) -> bool:
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
            db.execute(INSERT_PRICE, price_values(first))
    db.execute(INSERT_PRICE, price_values(price_point_of(new, at, actor, reason)))


def apply_point(db: sqlite3.Connection, point: PricePoint, at: datetime) -> HistoryEntry | None:
    """A scheduled price written into its model (None if the model is gone)."""
    row = one_row(db, "SELECT * FROM model_configurations WHERE model_id = ?", point.model_id)
    if row is None:
        return None
    document = {**model_to_json(model_of(row)), **point_prices(point)}
    reason = point.reason or f"scheduled price from {point.effective_from.isoformat()}"
    return apply_change(
        db, "model", point.model_id, document, SCHEDULE_ACTOR, reason, at, record_price=False
    )


def apply_change(
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
    kind = ENTITIES[entity]
    key = kind.key_of(entity_id)
    row = one_row(db, f"SELECT * FROM {kind.table} WHERE {kind.key} = ?", key)  # noqa: S608
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
        (
            entity,
            entity_id,
            action,
            actor,
            reason,
            json_text(old),
            json_text(document),
            at.isoformat(),
        ),
    )
    return HistoryEntry(
        int(cur.lastrowid or 0), entity, entity_id, action, actor, reason, old, document, at
    )
