"""What the Firestore ledger ships: outbox rows as `ledger/{request_id}` documents
and balance increments, committed in one transaction; and balances read back.

A row whose document exists was shipped before (a crash after the commit) and
is skipped, its amount never incremented twice.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import AsyncClient

from billing.subjects import account_of

SHIP_ROWS = 240  # rows + one increment per user stay under Firestore's 500 writes


def ledger_document(row: sqlite3.Row) -> dict[str, Any]:
    """An outbox row as its Firestore document (prices stay the JSON copy)."""
    return {name: row[name] for name in row.keys() if name != "rowid"}  # noqa: SIM118


async def balance_documents(db: AsyncClient, user_ids: list[str]) -> dict[str, int]:
    if not user_ids:
        await db.collection("balances").limit(1).get()
        return {}
    refs = [db.collection("balances").document(user_id) for user_id in user_ids]
    return {
        snapshot.id: int((snapshot.to_dict() or {}).get("balance_nano", 0))
        async for snapshot in db.get_all(refs)
        if snapshot.exists
    }


async def commit_rows(db: AsyncClient, rows: list[sqlite3.Row]) -> None:
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
            per_user[account_of(row["user_id"], row["team_id"], row["paid_by"])] += int(
                row["amount_nano"]
            )
        for user_id, amount in per_user.items():
            if amount:
                transaction.set(
                    db.collection("balances").document(user_id),
                    {"balance_nano": firestore.Increment(amount)},
                    merge=True,
                )

    await ship(db.transaction())
