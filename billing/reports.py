"""Read-only reports over the ledger: usage, pages of rows, key statistics, and
reconciliation. Each runs on its own SQLite connection in a worker thread, so
the event loop and the ledger writer never wait for it (WAL: readers do not
block the writer)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from billing.ledger_types import LedgerError

T = TypeVar("T")

GROUPS = {
    "user": "user_id",
    "key": "key_id",
    "model": "model_id",
    "provider": "provider",
    "day": "substr(created_at, 1, 10)",
    "team": "team_id",
    "end_user": "end_user",
}


_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,400}")


class BadCursor(ValueError):
    """An `after` that is not a cursor this store's pages return."""


@dataclass(frozen=True, slots=True)
class LedgerPage:
    rows: list[dict[str, Any]]
    next: str | None  # the cursor after the last row (None for an empty page)


def encode_cursor(store: str, *position: str) -> str:
    """An opaque cursor: a page's position, meaningful only to `store`'s reports."""
    text = "\n".join((store, *position))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str, store: str, size: int) -> list[str]:
    """The position in a cursor made by `encode_cursor(store, ...)` with `size` parts."""
    if not _CURSOR.fullmatch(raw):
        raise BadCursor(raw)
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadCursor(raw) from None
    parts = text.split("\n")
    if len(parts) != size + 1 or parts[0] != store:
        raise BadCursor(raw)
    return parts[1:]


class Reports(Protocol):
    """What the admin API reads from a ledger: SQLite's or Firestore's."""

    async def usage(
        self, group_by: list[str], since: str | None, until: str | None
    ) -> list[dict[str, Any]]: ...

    async def page(
        self, *, user_id: str | None, kind: str | None, after: str | None, limit: int
    ) -> LedgerPage: ...

    async def key_stats(self, key_ids: list[str]) -> dict[str, tuple[int, str | None]]: ...

    async def user_spend(self, user_id: str, since: list[str]) -> list[int]:
        """What the user was charged from each of `since` (ISO times) on."""
        ...

    async def balances(self) -> dict[str, tuple[int, int, int]]: ...

    async def orphans(self) -> int: ...

    async def shortfall(self) -> tuple[int, int]:
        """What providers' usage priced beyond the holds (never charged), and how
        many usage reports were anomalies billed from the gateway's own count."""
        ...


class LedgerReports:
    def __init__(self, path: Path) -> None:
        self._path = path

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5)
            try:
                db.row_factory = sqlite3.Row
                return work(db)
            finally:
                db.close()

        try:
            return await asyncio.to_thread(run)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger: {exc}") from exc

    async def usage(
        self, group_by: list[str], since: str | None, until: str | None
    ) -> list[dict[str, Any]]:
        """Charges summed per group over [since, until) (ISO times)."""
        columns = [f"{GROUPS[name]} AS {name}" for name in group_by]
        where, args = ["kind = 'charge'"], []
        if since:
            where.append("created_at >= ?")
            args.append(since)
        if until:
            where.append("created_at < ?")
            args.append(until)
        keys = ", ".join(group_by)
        sql = (
            f"SELECT {', '.join(columns) + ', ' if columns else ''}"  # noqa: S608
            "COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, "
            "SUM(completion_tokens) AS completion_tokens, "
            "SUM(cache_read_tokens) AS cache_read_tokens, "
            "SUM(cache_write_tokens) AS cache_write_tokens, "
            "-SUM(amount_nano) AS cost_nano, "
            "SUM(uncollected_nano) AS uncollected_nano, "
            "SUM(usage_source = 'anomaly') AS usage_anomalies "
            f"FROM ledger WHERE {' AND '.join(where)}"
            + (f" GROUP BY {keys} ORDER BY {keys}" if keys else "")
        )

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = [dict(row) for row in db.execute(sql, args)]
            return [row for row in rows if row["requests"]]

        return await self._read(work)

    async def page(
        self, *, user_id: str | None, kind: str | None, after: str | None, limit: int
    ) -> LedgerPage:
        """Ledger rows in commit order, after a cursor: by rowid, which SQLite gives
        each new row as one more than the largest so far; rows are never deleted,
        and writers take turns, so a row committed later always has a larger rowid
        than every row a reader could already see. (A VACUUM may renumber rowids,
        in the same order: cursors taken before one are not valid after it.)"""
        where: list[str] = []
        args: list[str | int] = []
        if user_id:
            where.append("user_id = ?")
            args.append(user_id)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if after:
            (seq,) = decode_cursor(after, "sqlite", 1)
            if not seq.isdigit() or len(seq) > 19:
                raise BadCursor(after)
            where.append("rowid > ?")
            args.append(int(seq))
        sql = "SELECT rowid AS seq, * FROM ledger"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid LIMIT ?"

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(row) for row in db.execute(sql, (*args, limit))]

        rows = await self._read(work)
        return LedgerPage(rows, encode_cursor("sqlite", str(rows[-1]["seq"])) if rows else None)

    async def key_stats(self, key_ids: list[str]) -> dict[str, tuple[int, str | None]]:
        """Per key id: (nano-USD charged, time of the last charge)."""
        if not key_ids:
            return {}
        marks = ", ".join("?" for _ in key_ids)
        sql = (
            "SELECT key_id, -SUM(amount_nano), MAX(created_at) FROM ledger "  # noqa: S608
            f"WHERE kind = 'charge' AND key_id IN ({marks}) GROUP BY key_id"
        )

        def work(db: sqlite3.Connection) -> dict[str, tuple[int, str | None]]:
            return {row[0]: (int(row[1]), row[2]) for row in db.execute(sql, key_ids)}

        return await self._read(work)

    async def user_spend(self, user_id: str, since: list[str]) -> list[int]:
        sql = (
            "SELECT COALESCE(-SUM(amount_nano), 0) FROM ledger "
            "WHERE user_id = ? AND created_at >= ? AND kind = 'charge'"
        )

        def work(db: sqlite3.Connection) -> list[int]:
            return [int(db.execute(sql, (user_id, start)).fetchone()[0]) for start in since]

        return await self._read(work)

    async def balances(self) -> dict[str, tuple[int, int, int]]:
        """Per account (a user, or "team:<id>" for a team's wallet): (balance column,
        sum of its ledger rows, number of rows)."""
        sql = (
            "SELECT u.id, u.balance_nano, COALESCE(SUM(l.amount_nano), 0), COUNT(l.request_id) "
            "FROM users u LEFT JOIN ledger l ON l.user_id = u.id AND l.paid_by != 'team' "
            "GROUP BY u.id "
            "UNION ALL "
            "SELECT 'team:' || t.team_id, t.balance_nano, COALESCE(SUM(l.amount_nano), 0), "
            "COUNT(l.request_id) FROM team_balances t "
            "LEFT JOIN ledger l ON l.team_id = t.team_id AND l.paid_by = 'team' "
            "GROUP BY t.team_id ORDER BY 1"
        )

        def work(db: sqlite3.Connection) -> dict[str, tuple[int, int, int]]:
            return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in db.execute(sql)}

        return await self._read(work)

    async def orphans(self) -> int:
        """Ledger rows whose user does not exist (there should be none)."""
        sql = (
            "SELECT COUNT(*) FROM ledger WHERE user_id NOT IN (SELECT id FROM users) "
            "AND NOT (paid_by = 'team' AND user_id = '')"
        )
        return await self._read(lambda db: int(db.execute(sql).fetchone()[0]))

    async def shortfall(self) -> tuple[int, int]:
        sql = (
            "SELECT COALESCE(SUM(uncollected_nano), 0), "
            "COALESCE(SUM(usage_source = 'anomaly'), 0) FROM ledger WHERE kind = 'charge'"
        )

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            uncollected, anomalies = db.execute(sql).fetchone()
            return int(uncollected), int(anomalies)

        return await self._read(work)
