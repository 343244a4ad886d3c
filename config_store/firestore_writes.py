"""The Firestore store's transactions: changes with their history entries, a user
with its balance document, a scheduled price written into its model.

Every read of a transaction comes before its writes; history entries are
numbered through the counter document `counters/config_history`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import AsyncClient
from google.cloud.firestore_v1.async_transaction import AsyncTransaction
from google.cloud.firestore_v1.base_query import FieldFilter

from config_store.documents import SCHEDULE_ACTOR, point_prices, price_point_of, prices_of
from config_store.firestore_documents import (
    history_id,
    json_to_store,
    price_data,
    read_moment,
    read_price,
    stored_as_json,
    valid_or_none,
)
from config_store.schema import HistoryEntry
from config_store.store import NotFound

ENTITY_COLLECTION = {
    "router_config": "router_config",
    "model_profile": "model_profiles",
    "model": "model_configurations",
    "provider": "providers",
    "tier": "pricing_tiers",
    "team": "teams",
    "budget": "budgets",
    "balance_alert": "balance_alerts",
}
# Attempts of a transaction that contends with other instances' (the client's default is 5).
TRANSACTION_ATTEMPTS = 20


def transactional(function: Any) -> Any:
    return firestore.async_transactional(function)


async def write_changes(
    transaction: AsyncTransaction,
    db: AsyncClient,
    changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
    actor: str,
    reason: str,
) -> list[HistoryEntry]:
    # Every read of a transaction comes before its writes.
    counter_ref = db.collection("counters").document("config_history")
    counter = await counter_ref.get(transaction=transaction)
    number = int((counter.to_dict() or {}).get("value", 0)) if counter.exists else 0
    olds: list[tuple[Any, dict[str, Any] | None]] = []
    for entity, entity_id, _ in changes:
        ref = await _entity_ref(db, transaction, entity, entity_id)
        snapshot = await ref.get(transaction=transaction)
        olds.append(
            (ref, stored_as_json(entity, snapshot.to_dict() or {}) if snapshot.exists else None)
        )
    priced: set[str] = set()
    for entity, entity_id, new in changes:
        if entity == "model" and new is not None:
            query = (
                db.collection("model_prices")
                .where(filter=FieldFilter("model_id", "==", entity_id))
                .limit(1)
            )
            if [doc async for doc in query.stream(transaction=transaction)]:
                priced.add(entity_id)
    at = datetime.now(UTC)
    entries = []
    for (entity, entity_id, new), (ref, old) in zip(changes, olds, strict=True):
        if old is None and new is None:
            raise NotFound(f"{entity} {entity_id!r} does not exist")
        if new is None:
            transaction.delete(ref)
        else:
            transaction.set(ref, json_to_store(entity, new))
            if entity == "model" and prices_of(old) != prices_of(new):
                if old is not None and entity_id not in priced:
                    first = price_point_of(old, read_moment(old.get("created_at")), "", "created")
                    transaction.set(db.collection("model_prices").document(), price_data(first))
                point = price_point_of(new, at, actor, reason)
                transaction.set(db.collection("model_prices").document(), price_data(point))
                priced.add(entity_id)
        number += 1
        action = "create" if old is None else "delete" if new is None else "update"
        document = None if new is None else dict(new)
        entry = HistoryEntry(number, entity, entity_id, action, actor, reason, old, document, at)
        _record(transaction, db, entry)
        entries.append(entry)
    transaction.set(counter_ref, {"value": number})
    return entries


def _record(transaction: AsyncTransaction, db: AsyncClient, entry: HistoryEntry) -> None:
    """A history entry, written in `transaction`."""
    transaction.set(
        db.collection("config_history").document(history_id(entry.id)),
        {
            "id": entry.id,
            "entity": entry.entity,
            "entity_id": entry.entity_id,
            "action": entry.action,
            "actor": entry.actor,
            "reason": entry.reason,
            "old": None if entry.old is None else json.dumps(entry.old, sort_keys=True),
            "new": None if entry.new is None else json.dumps(entry.new, sort_keys=True),
            "at": entry.at.isoformat(),
        },
    )


async def put_user_and_balance(
    transaction: AsyncTransaction, db: AsyncClient, values: dict[str, Any], overwrite: bool
) -> bool:
    user_ref = db.collection("users").document(values["id"])
    balance_ref = db.collection("balances").document(values["id"])
    user = await user_ref.get(transaction=transaction)
    balance = await balance_ref.get(transaction=transaction)
    written = overwrite or not user.exists
    if written:
        transaction.set(user_ref, values, merge=True)
    if not balance.exists:
        transaction.create(balance_ref, {"balance_nano": 0})
    return written


async def apply_point(
    transaction: AsyncTransaction, db: AsyncClient, point_ref: Any, at: datetime
) -> HistoryEntry | None:
    """One scheduled price written into its model, if no one did it before."""
    snapshot = await point_ref.get(transaction=transaction)
    point = (
        valid_or_none("price", lambda: read_price(snapshot.to_dict() or {}))
        if snapshot.exists
        else None
    )
    if point is None or point.applied:
        return None
    counter_ref = db.collection("counters").document("config_history")
    counter = await counter_ref.get(transaction=transaction)
    model_ref = await _entity_ref(db, transaction, "model", point.model_id)
    model = await model_ref.get(transaction=transaction)
    transaction.update(point_ref, {"applied": True})
    if not model.exists:
        return None  # the model is gone: nothing to write the price into
    number = int((counter.to_dict() or {}).get("value", 0)) + 1 if counter.exists else 1
    old = stored_as_json("model", model.to_dict() or {})
    new = {**old, **point_prices(point)}
    transaction.set(model_ref, json_to_store("model", new))
    reason = point.reason or f"scheduled price from {point.effective_from.isoformat()}"
    entry = HistoryEntry(number, "model", point.model_id, "update", SCHEDULE_ACTOR, reason, old,
                         new, at)  # fmt: skip
    _record(transaction, db, entry)
    transaction.set(counter_ref, {"value": number})
    return entry


async def _entity_ref(
    db: AsyncClient, transaction: AsyncTransaction, entity: str, entity_id: str
) -> Any:
    collection = db.collection(ENTITY_COLLECTION[entity])
    if entity == "router_config":
        return collection.document("default")
    if entity == "model":
        # A model document written by hand may have any id: find it by model_id.
        query = collection.where(filter=FieldFilter("model_id", "==", entity_id)).limit(1)
        found = [doc async for doc in query.stream(transaction=transaction)]
        if found:
            return found[0].reference
    return collection.document(entity_id)
