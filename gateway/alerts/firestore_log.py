"""Alert deliveries on Firestore: `alert_deliveries/{sha256 of the key}`, created
once by whichever instance claims the alert first (imported only with Firestore)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import firestore
from google.cloud.firestore_v1 import AsyncClient

from gateway.alerts.delivery_logs import delivery_of, pending
from gateway.alerts.webhook import Alert, Delivery


class FirestoreDeliveryLog:
    """`alert_deliveries/{sha256 of the key}`: created once, by whichever instance
    claims it first."""

    def __init__(self, db: Callable[[], AsyncClient]) -> None:
        self._db = db

    def _ref(self, key: str) -> Any:
        doc_id = hashlib.sha256(key.encode()).hexdigest()
        return self._db().collection("alert_deliveries").document(doc_id)

    async def claim(self, alert: Alert) -> bool:
        try:
            await self._ref(alert.key).create(pending(alert).to_json())
        except google_errors.AlreadyExists:
            return False
        return True

    async def record(self, delivery: Delivery) -> None:
        await self._ref(delivery.key).set(delivery.to_json())

    async def recent(self, limit: int) -> list[Delivery]:
        query = (
            self._db()
            .collection("alert_deliveries")
            .order_by("created_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        return [delivery_of(doc.to_dict() or {}) for doc in await query.get()]
