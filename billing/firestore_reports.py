"""The ledger reports (usage, pages, key statistics, balances) over Firestore's
`ledger` and `users` collections. Firestore has no GROUP BY: rows are read and
summed here, so a report costs one read per ledger row in its range; fine for
audits and dashboards, not for a per-request path (nothing here is on one).

Pages follow commit order: each ledger document's `create_time`, which
Firestore sets to the commit time of the transaction that created it (the
shipping transaction; its rows share it, and are ordered by request id). A
query reads at one read time and sees every commit up to it, none after; so a
document that becomes visible later has a later commit time than every
document a page has shown, and a cursor never misses or repeats one."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud.firestore_v1 import AsyncClient
from google.cloud.firestore_v1.base_query import FieldFilter

from billing.ledger_types import LedgerError
from billing.reports import GROUPS, BadCursor, LedgerPage, decode_cursor, encode_cursor
from billing.subjects import account_of

_SUMS = (
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "uncollected_nano",
)


def _group_value(row: dict[str, Any], name: str) -> Any:
    column = GROUPS[name]
    if name == "day":
        return str(row.get("created_at", ""))[:10]
    return row.get(column, "")


class FirestoreReports:
    def __init__(self, db: Callable[[], AsyncClient]) -> None:
        self._db = db

    async def _documents(self, *filters: FieldFilter) -> list[Any]:
        query: Any = self._db().collection("ledger")
        for condition in filters:
            query = query.where(filter=condition)
        try:
            return list(await asyncio.wait_for(query.get(), timeout=60))
        except (TimeoutError, google_errors.GoogleAPIError) as exc:
            raise LedgerError(f"Firestore: {exc}") from exc

    async def _rows(self, *filters: FieldFilter) -> list[dict[str, Any]]:
        return [doc.to_dict() or {} for doc in await self._documents(*filters)]

    async def usage(
        self, group_by: list[str], since: str | None, until: str | None
    ) -> list[dict[str, Any]]:
        totals: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in await self._rows(FieldFilter("kind", "==", "charge")):
            created = str(row.get("created_at", ""))
            if (since and created < since) or (until and created >= until):
                continue
            key = tuple(_group_value(row, name) for name in group_by)
            total = totals.setdefault(
                key,
                {**dict(zip(group_by, key, strict=True)), "requests": 0, **dict.fromkeys(_SUMS, 0)}
                | {"cost_nano": 0, "usage_anomalies": 0},
            )
            total["requests"] += 1
            for name in _SUMS:
                total[name] += int(row.get(name, 0))
            total["cost_nano"] -= int(row.get("amount_nano", 0))
            total["usage_anomalies"] += row.get("usage_source") == "anomaly"
        return [totals[key] for key in sorted(totals, key=lambda k: tuple(map(str, k)))]

    async def page(
        self, *, user_id: str | None, kind: str | None, after: str | None, limit: int
    ) -> LedgerPage:
        """Ledger documents in commit order (see the module's docstring), after a cursor."""
        start: tuple[int, str] | None = None
        if after:
            committed, request_id = decode_cursor(after, "firestore", 2)
            if not committed.isdigit() or len(committed) > 30:
                raise BadCursor(after)
            start = (int(committed), request_id)
        filters = []
        if user_id:
            filters.append(FieldFilter("user_id", "==", user_id))
        if kind:
            filters.append(FieldFilter("kind", "==", kind))
        ordered = sorted(
            (
                (_nanoseconds(doc.create_time), doc.id, doc)
                for doc in await self._documents(*filters)
            ),
            key=lambda item: (item[0], item[1]),
        )
        if start is not None:
            ordered = [item for item in ordered if (item[0], item[1]) > start]
        shown = ordered[:limit]
        rows = [
            {**(doc.to_dict() or {}), "committed_at": doc.create_time.isoformat()}
            for _, _, doc in shown
        ]
        if not shown:
            return LedgerPage(rows, None)
        last_committed, last_id, _ = shown[-1]
        return LedgerPage(rows, encode_cursor("firestore", str(last_committed), last_id))

    async def key_stats(self, key_ids: list[str]) -> dict[str, tuple[int, str | None]]:
        stats: dict[str, tuple[int, str | None]] = {}
        for key_id in key_ids:
            rows = await self._rows(FieldFilter("key_id", "==", key_id))
            charges = [r for r in rows if r.get("kind") == "charge"]
            if charges:
                spent = -sum(int(r["amount_nano"]) for r in charges)
                stats[key_id] = (spent, max(str(r["created_at"]) for r in charges))
        return stats

    async def user_spend(self, user_id: str, since: list[str]) -> list[int]:
        rows = await self._rows(FieldFilter("user_id", "==", user_id))
        charges = [
            (str(r.get("created_at", "")), int(r["amount_nano"]))
            for r in rows
            if r.get("kind") == "charge"
        ]
        return [-sum(amount for at, amount in charges if at >= start) for start in since]

    async def _collection(self, name: str) -> dict[str, dict[str, Any]]:
        try:
            docs = await asyncio.wait_for(self._db().collection(name).get(), timeout=60)
        except (TimeoutError, google_errors.GoogleAPIError) as exc:
            raise LedgerError(f"Firestore: {exc}") from exc
        return {doc.id: doc.to_dict() or {} for doc in docs}

    async def balances(self) -> dict[str, tuple[int, int, int]]:
        users = await self._collection("users")
        balances = await self._collection("balances")
        sums: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        for row in await self._rows():
            account = account_of(row["user_id"], row.get("team_id", ""), row.get("paid_by", ""))
            sums[account] += int(row["amount_nano"])
            counts[account] += 1
        return {
            user_id: (
                int(balances.get(user_id, {}).get("balance_nano", 0)),
                sums[user_id],
                counts[user_id],
            )
            for user_id in sorted(set(users) | set(balances))
        }

    async def orphans(self) -> int:
        known = set(await self._collection("users"))
        return sum(
            1
            for row in await self._rows()
            if row["user_id"] not in known
            and not (row.get("paid_by") == "team" and row["user_id"] == "")
        )

    async def shortfall(self) -> tuple[int, int]:
        rows = await self._rows(FieldFilter("kind", "==", "charge"))
        uncollected = sum(int(row.get("uncollected_nano", 0)) for row in rows)
        return uncollected, sum(row.get("usage_source") == "anomaly" for row in rows)


def _nanoseconds(moment: Any) -> int:
    """A Firestore timestamp as integer nanoseconds since the epoch (no float on the way)."""
    stamp = moment.timestamp_pb()
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)
