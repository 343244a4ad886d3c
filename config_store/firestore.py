"""The Firestore backend of `ConfigStore` (google-cloud-firestore's AsyncClient),
for several gateway instances sharing one configuration.

Collections (one document per entity; the README draws every shape):

    providers/{id}                provider fields (`api_key` only ever ciphertext)
    model_configurations/{model_id}  the model's fields (id, model_id, provider,
                                  input_price_per_million, output_price_per_million,
                                  context_window_size, is_active, created_at) and ours;
                                  prices are decimal strings (numbers are read too)
    pricing_tiers/{id}            id, name, markup_percent
    users/{id}                    id, name, tier_id
    balances/{user_id}            balance_nano, moved only by ledger increments
    api_keys/{key_hash}           the key's hash, prefix, owner, limits
    model_profiles/{model_id}     the router's profile document
    router_config/default         the router's config document
    model_prices/{auto id}        price points (model_id, effective_from, prices, ...)
    config_history/{000000000042} changes, numbered through counters/config_history
    sync_status/{provider}        the last discovery run per provider
    ledger/{request_id}           ledger rows (written by billing.firestore_ledger)
    teams/{id}, budgets/{id}, balance_alerts/{id}  their JSON documents
    balances/team:{id}            a team wallet's balance, as a user's
    alert_deliveries/{sha256}     one per alert: created once, whichever instance sends it

Firestore's own errors become `StoreError`s here; documents written by hand
(in the console) are read as long as their fields are valid, whatever their id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud.firestore_v1 import AsyncClient
from google.cloud.firestore_v1.base_query import FieldFilter

from config_store.budgets import balance_alert_from_json, budget_from_json, team_from_json
from config_store.documents import (
    model_to_json,
    provider_from_json,
    provider_to_json,
    tier_to_json,
)
from config_store.firestore_client import CLIENT_ERRORS, TimeLimit, client, describe
from config_store.firestore_documents import (
    api_key_data,
    each_valid,
    history_id,
    price_data,
    read_api_key,
    read_history,
    read_model,
    read_price,
    read_profile,
    read_tier,
    read_user,
    valid_or_none,
)
from config_store.firestore_watch import CONFIG_COLLECTIONS, Watching
from config_store.firestore_writes import (
    ENTITY_COLLECTION,
    TRANSACTION_ATTEMPTS,
    apply_point,
    put_user_and_balance,
    transactional,
    write_changes,
)
from config_store.router_config import ConfigInvalid, RouterConfig
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
from config_store.store import Invalid, StoreError, StoreUnavailable


class FirestoreStore:
    def __init__(self, project: str, emulator_host: str = "", *, timeout: float = 30.0) -> None:
        self._project = project
        self._emulator_host = emulator_host
        self._db: AsyncClient | None = None
        self._limit = TimeLimit(timeout)
        # Writes that number history entries all move one counter document: this
        # instance's take turns (others' contend, and their transactions retry).
        self._numbering = asyncio.Lock()

    @property
    def source(self) -> str:
        return "firestore"

    @property
    def project(self) -> str:
        return self._project

    @property
    def db(self) -> AsyncClient:
        if self._db is None:
            raise StoreUnavailable("the Firestore store is not open")
        return self._db

    async def open(self) -> None:
        if self._db is None:
            try:
                self._db = client(self._project, self._emulator_host)
            except Exception as exc:  # credentials not found, and the like
                raise StoreUnavailable(f"cannot open Firestore: {describe(exc)}") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()  # type: ignore[no-untyped-call]
        await self._limit.cancel_late()

    async def _run(self, work: Callable[[AsyncClient], Any]) -> Any:
        """One use of the store within the time limit; whatever the client raises
        becomes a StoreError (StoreUnavailable when the store does not answer)."""
        db = self.db
        try:
            return await self._limit.run(work(db))
        except StoreError:
            raise
        except ConfigInvalid as exc:
            raise Invalid(f"invalid document: {exc}", exc.param) from exc
        except (TimeoutError, google_errors.ServiceUnavailable, google_errors.RetryError) as exc:
            raise StoreUnavailable(f"Firestore is unavailable: {describe(exc)}") from exc
        except Exception as exc:  # the client's other errors, a transaction's ValueError
            raise StoreError(f"Firestore: {describe(exc)}") from exc

    def watch(self, on_change: Callable[[], None]) -> Watching:
        """Call `on_change` (from another thread) whenever a config document changes."""
        try:
            return Watching(self._project, self._emulator_host, on_change)
        except CLIENT_ERRORS as exc:
            raise StoreUnavailable(f"cannot listen to Firestore: {exc}") from exc

    async def migrate(self) -> list[int]:
        """Firestore has no schema; reachability is checked here, once."""

        async def work(db: AsyncClient) -> list[int]:
            await db.collection("meta").document("schema").get()
            return []

        result: list[int] = await self._run(work)
        return result

    async def load(self) -> Catalogue:
        async def work(db: AsyncClient) -> Catalogue:
            fetched = await asyncio.gather(
                *(db.collection(name).get() for name in CONFIG_COLLECTIONS)
            )
            data = {
                name: [doc.to_dict() or {} for doc in docs]
                for name, docs in zip(CONFIG_COLLECTIONS, fetched, strict=True)
            }
            config = [d for d in data["router_config"] if d]
            router = (
                valid_or_none("router_config", lambda: RouterConfig.from_json(config[0]))
                if config
                else None
            )
            return Catalogue(
                providers=each_valid("provider", data["providers"], provider_from_json),
                models=each_valid("model", data["model_configurations"], read_model),
                tiers=each_valid("tier", data["pricing_tiers"], read_tier),
                users=each_valid("user", data["users"], read_user),
                api_keys=each_valid("api_key", data["api_keys"], read_api_key),
                profiles=each_valid("profile", data["model_profiles"], read_profile),
                router_config=router,
                teams=each_valid("team", data["teams"], team_from_json),
                budgets=each_valid("budget", data["budgets"], budget_from_json),
                balance_alerts=each_valid(
                    "balance_alert", data["balance_alerts"], balance_alert_from_json
                ),
                prices=tuple(
                    sorted(
                        each_valid("price", data["model_prices"], read_price),
                        key=lambda p: p.effective_from,
                    )
                ),
            )

        catalogue: Catalogue = await self._run(work)
        return catalogue

    async def _put(
        self, collection: str, doc_id: str, data: dict[str, Any], overwrite: bool
    ) -> bool:
        async def work(db: AsyncClient) -> bool:
            ref = db.collection(collection).document(doc_id)
            if overwrite:
                await ref.set(data, merge=True)
                return True
            try:
                await ref.create(data)
            except google_errors.AlreadyExists:
                return False
            return True

        written: bool = await self._run(work)
        return written

    async def put_provider(self, provider: Provider, *, overwrite: bool = True) -> bool:
        return await self._put("providers", provider.id, provider_to_json(provider), overwrite)

    async def put_model(self, model: ModelConfig, *, overwrite: bool = True) -> bool:
        return await self._put(
            "model_configurations", model.model_id, model_to_json(model), overwrite
        )

    async def put_tier(self, tier: PricingTier, *, overwrite: bool = True) -> bool:
        return await self._put("pricing_tiers", tier.id, tier_to_json(tier), overwrite)

    async def put_user(self, user: User, *, overwrite: bool = True) -> bool:
        """The user's document and, when it has none, its balance document at 0
        (never an existing one: only ledger increments move a balance)."""
        values = {"id": user.id, "name": user.name, "tier_id": user.tier_id}

        async def work(db: AsyncClient) -> bool:
            written: bool = await transactional(put_user_and_balance)(
                db.transaction(), db, values, overwrite
            )
            return written

        written: bool = await self._run(work)
        return written

    async def put_api_key(self, key: ApiKey, *, overwrite: bool = True) -> bool:
        return await self._put("api_keys", key.key_hash, api_key_data(key), overwrite)

    async def add_price(self, point: PricePoint) -> None:
        async def work(db: AsyncClient) -> None:
            await db.collection("model_prices").add(price_data(point))

        await self._run(work)

    async def prices(self, model_id: str) -> list[PricePoint]:
        async def work(db: AsyncClient) -> list[PricePoint]:
            docs = (
                await db.collection("model_prices")
                .where(filter=FieldFilter("model_id", "==", model_id))
                .get()
            )
            points = [read_price(doc.to_dict() or {}) for doc in docs]
            return sorted(points, key=lambda p: (p.effective_from, p.recorded_at))

        points: list[PricePoint] = await self._run(work)
        return points

    async def apply_due_prices(self, now: datetime) -> list[HistoryEntry]:
        """Each scheduled price in force at `now` and not yet applied, written into
        its model in a transaction that first reads the point again: of several
        instances doing this at once, one writes it and the others find it applied."""

        async def work(db: AsyncClient) -> list[HistoryEntry]:
            docs = await db.collection("model_prices").get()
            points = each_valid(
                "price", docs, lambda doc: (read_price(doc.to_dict() or {}), doc.reference)
            )
            due = [
                (point.effective_from, ref)
                for point, ref in points
                if not point.applied and point.effective_from <= now
            ]
            entries = []
            for _, ref in sorted(due, key=lambda item: item[0]):
                entry: HistoryEntry | None = await transactional(apply_point)(
                    db.transaction(max_attempts=TRANSACTION_ATTEMPTS), db, ref, now
                )
                if entry is not None:
                    entries.append(entry)
            return entries

        async with self._numbering:
            entries: list[HistoryEntry] = await self._run(work)
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
        [entry] = await self.change_many([(entity, entity_id, new)], actor=actor, reason=reason)
        return entry

    async def change_many(
        self,
        changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        actor: str,
        reason: str = "",
    ) -> list[HistoryEntry]:
        """All the changes and their history entries in one transaction."""
        for entity, _, _ in changes:
            if entity not in ENTITY_COLLECTION:
                raise StoreError(f"unknown entity {entity!r}")

        async def work(db: AsyncClient) -> list[HistoryEntry]:
            transaction = db.transaction(max_attempts=TRANSACTION_ATTEMPTS)
            result: list[HistoryEntry] = await transactional(write_changes)(
                transaction, db, changes, actor, reason
            )
            return result

        async with self._numbering:
            entries: list[HistoryEntry] = await self._run(work)
        return entries

    async def put_sync_status(self, provider: str, status: Mapping[str, Any]) -> None:
        async def work(db: AsyncClient) -> None:
            await db.collection("sync_status").document(provider).set(dict(status))

        await self._run(work)

    async def sync_statuses(self) -> dict[str, dict[str, Any]]:
        async def work(db: AsyncClient) -> dict[str, dict[str, Any]]:
            return {doc.id: doc.to_dict() or {} for doc in await db.collection("sync_status").get()}

        statuses: dict[str, dict[str, Any]] = await self._run(work)
        return statuses

    async def history(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[HistoryEntry]:
        async def work(db: AsyncClient) -> list[HistoryEntry]:
            query: Any = db.collection("config_history")
            if entity is not None:
                query = query.where(filter=FieldFilter("entity", "==", entity))
            if entity_id is not None:
                query = query.where(filter=FieldFilter("entity_id", "==", entity_id))
            docs = await query.get()
            entries = sorted(
                (read_history(doc.to_dict() or {}) for doc in docs), key=lambda e: -e.id
            )
            if before is not None:
                entries = [e for e in entries if e.id < before]
            return entries[:limit]

        entries: list[HistoryEntry] = await self._run(work)
        return entries

    async def history_entry(self, entry_id: int) -> HistoryEntry | None:
        async def work(db: AsyncClient) -> HistoryEntry | None:
            doc = await db.collection("config_history").document(history_id(entry_id)).get()
            return read_history(doc.to_dict() or {}) if doc.exists else None

        entry: HistoryEntry | None = await self._run(work)
        return entry
