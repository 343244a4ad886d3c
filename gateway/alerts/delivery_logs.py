"""Where alert deliveries are recorded: the SQLite file (one instance; Firestore's
log is `gateway.alerts.firestore_log`). A claim creates the delivery's record
only if there is none, so each alert key is delivered once across instances
and restarts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from config_store.writes import SqliteWrites
from gateway.alerts.webhook import Alert, Delivery

_FIELDS = ("key", "event", "body", "attempts", "status", "last_status", "last_error",
           "created_at", "delivered_at")  # fmt: skip


def pending(alert: Alert) -> Delivery:
    return Delivery(alert.key, alert.event, alert.body().decode(), 0, "pending", None, None,
                    alert.created_at, None)  # fmt: skip


def delivery_of(data: dict[str, Any]) -> Delivery:
    fields: dict[str, Any] = {name: data.get(name) for name in _FIELDS}
    return Delivery(**fields)


class SqliteDeliveryLog:
    """The `alert_deliveries` table, written through the process's one writer."""

    def __init__(self, path: Path, writes: SqliteWrites) -> None:
        self._path = path
        self._writes = writes

    async def claim(self, alert: Alert) -> bool:
        record = pending(alert)

        def insert(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO alert_deliveries (key, data, created_at) VALUES (?, ?, ?)",
                (alert.key, json.dumps(record.to_json()), alert.created_at),
            )
            return cursor.rowcount == 1

        return await self._writes.write(insert)

    async def record(self, delivery: Delivery) -> None:
        data = json.dumps(delivery.to_json())
        await self._writes.write(
            lambda db: db.execute(
                "UPDATE alert_deliveries SET data = ? WHERE key = ?", (data, delivery.key)
            )
        )

    async def recent(self, limit: int) -> list[Delivery]:
        def read() -> list[Delivery]:
            db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute(
                    "SELECT data FROM alert_deliveries ORDER BY created_at DESC, key LIMIT ?",
                    (limit,),
                ).fetchall()
            finally:
                db.close()
            return [delivery_of(json.loads(row[0])) for row in rows]

        return await asyncio.to_thread(read)
