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

Firestore's own errors become `StoreError`s here; documents written by hand
(in the console) are read as long as their fields are valid, whatever their id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

import grpc
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1 import AsyncClient, Client
from google.cloud.firestore_v1.async_transaction import AsyncTransaction
from google.cloud.firestore_v1.base_query import FieldFilter

from config_store.documents import (
    PRICE_FIELDS,
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
from config_store.store import Invalid, NotFound, StoreError, StoreUnavailable

log = logging.getLogger("gateway.store")
T = TypeVar("T")

CONFIG_COLLECTIONS = (
    "providers",
    "model_configurations",
    "pricing_tiers",
    "users",
    "api_keys",
    "model_profiles",
    "router_config",
    "model_prices",
)
_COLLECTION = {
    "router_config": "router_config",
    "model_profile": "model_profiles",
    "model": "model_configurations",
    "provider": "providers",
    "tier": "pricing_tiers",
}
# Attempts of a transaction that contends with other instances' (the client's default is 5).
_ATTEMPTS = 20
_ERRORS = (google_errors.GoogleAPIError, google_errors.RetryError)


class TimeLimit:
    """Runs calls to Firestore within a time limit, and really returns at the limit.

    `asyncio.wait_for` waits for the cancelled call to finish, and a cancelled
    google transaction first rolls back, which retries for up to a minute while
    the store is down (and then raises a ValueError of its own). Here a call
    still running at the limit is cancelled and left to end by itself; what it
    raises then is of no interest to anyone."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._late: set[asyncio.Task[Any]] = set()

    async def run(self, work: Awaitable[T], seconds: float | None = None) -> T:
        limit = self.seconds if seconds is None else seconds
        abandoned = False

        async def guarded() -> T:
            try:
                return await work
            except BaseException:
                if abandoned:
                    return cast(T, None)
                raise

        task = asyncio.ensure_future(guarded())
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        except asyncio.CancelledError:
            abandoned = True
            self._abandon(task)
            raise
        if not done:
            abandoned = True
            self._abandon(task)
            raise TimeoutError(f"Firestore did not answer within {limit:g} s")
        return task.result()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def cancel_late(self) -> None:
        """At close: calls still running are cancelled once more (which ends the
        rollback they may be in) and given a moment to end."""
        late = list(self._late)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)


def _describe(exc: BaseException) -> str:
    """An error for messages and logs: its type and first words (google's messages
    carry a long debug string)."""
    return f"{type(exc).__name__}: {exc}"[:300]


def client(project: str, emulator_host: str = "", *, sync: bool = False) -> Any:
    """A Firestore client for `project`; with `emulator_host`, one that talks to
    that emulator without credentials. The library reads the emulator's address
    from the process environment only when the client is built; the settings
    module is our one reader of the environment, so the address is handed to
    the client here instead (its channel is made lazily, on first use)."""
    kind = Client if sync else AsyncClient
    if not emulator_host:
        made = kind(project=project)
    else:
        made = kind(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        made._emulator_host = emulator_host
    _reconnect_promptly(made, asynchronous=not sync)
    return made


# gRPC waits longer and longer (up to two minutes) before it reconnects a channel
# whose connection failed, so after an outage a client would find the store back
# only minutes later (the tests measured 27 s after 90 s). These keep it short.
_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def _reconnect_promptly(made: Any, *, asynchronous: bool) -> None:
    """Give the client's gRPC channel the `_RECONNECT` options. The library makes
    its channel itself and takes no channel options, so the two places where it
    makes one are wrapped: the emulator's channel, and Firestore's, through the
    transport class it asks for one."""
    emulator_host = made._emulator_host

    def emulator_channel(transport: Any) -> Any:
        options = [
            ("Authorization", "Bearer owner"),  # the emulator's stand-in for a token
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", -1),
            *_RECONNECT,
        ]
        if asynchronous:
            return grpc.aio.insecure_channel(emulator_host, options=options)
        return grpc.insecure_channel(emulator_host, options=options)

    build = made._firestore_api_helper

    def api(transport: Any, client_class: Any, client_module: Any) -> Any:
        class Transport(transport):  # type: ignore[misc]
            @classmethod
            def create_channel(cls, *args: Any, options: Any = (), **kwargs: Any) -> Any:
                return transport.create_channel(
                    *args, options=[*(options or ()), *_RECONNECT], **kwargs
                )

        Transport.__name__ = transport.__name__  # the library picks sync or async by it
        return build(Transport, client_class, client_module)

    made._emulator_channel = emulator_channel
    made._firestore_api_helper = api


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))  # a number written in the console: its shortest text


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return EPOCH


def _model_document(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored model document as `model_from_json` takes it: prices as strings."""
    document = {k: v for k, v in data.items() if k in _MODEL_KEYS}
    for name in PRICE_FIELDS:
        if document.get(name) is not None:
            document[name] = str(_decimal(document[name]))
    if "created_at" in document:
        document["created_at"] = _moment(document["created_at"]).isoformat()
    if "id" in document:
        document["id"] = str(document["id"])
    return document


_MODEL_KEYS = set(model_to_json(ModelConfig("0", "x", "p", Decimal(0), Decimal(0), 1, 0)))


def _model(data: Mapping[str, Any]) -> ModelConfig:
    document = _model_document(data)
    return model_from_json(document, id=str(document.get("id", "")), created_at=EPOCH)


def _api_key(data: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_hash=data["key_hash"],
        prefix=data.get("prefix", ""),
        user_id=data["user_id"],
        name=data.get("name", ""),
        revoked=bool(data.get("revoked", False)),
        created_at=_moment(data.get("created_at")),
        rpm=int(data.get("rpm", 0)),
        tpm=int(data.get("tpm", 0)),
        allowed_models=tuple(data.get("allowed_models") or ()),
        spend_cap_nano=None if data.get("spend_cap_nano") is None else int(data["spend_cap_nano"]),
    )


def _price(data: Mapping[str, Any]) -> PricePoint:
    return PricePoint(
        model_id=data["model_id"],
        effective_from=_moment(data["effective_from"]),
        input_price_per_million=Decimal(str(data["input_price_per_million"])),
        output_price_per_million=Decimal(str(data["output_price_per_million"])),
        cached_input_price_per_million=_decimal(data.get("cached_input_price_per_million")),
        cache_write_price_per_million=_decimal(data.get("cache_write_price_per_million")),
        actor=data.get("actor", ""),
        reason=data.get("reason", ""),
        recorded_at=_moment(data.get("recorded_at")),
        # Documents written before the field: applied unless recorded ahead of time.
        applied=None if data.get("applied") is None else bool(data["applied"]),
    )


def price_data(point: PricePoint) -> dict[str, Any]:
    return {
        "model_id": point.model_id,
        "effective_from": point.effective_from.astimezone(UTC).isoformat(),
        "input_price_per_million": str(point.input_price_per_million),
        "output_price_per_million": str(point.output_price_per_million),
        "cached_input_price_per_million": _text(point.cached_input_price_per_million),
        "cache_write_price_per_million": _text(point.cache_write_price_per_million),
        "actor": point.actor,
        "reason": point.reason,
        "recorded_at": point.recorded_at.astimezone(UTC).isoformat(),
        "applied": bool(point.applied),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _each(kind: str, documents: Iterable[Any], parse: Callable[[Any], T]) -> tuple[T, ...]:
    """Every document that validates; one that does not is skipped and logged."""
    parsed = []
    for document in documents:
        try:
            parsed.append(parse(document))
        except (ConfigInvalid, KeyError, ValueError, TypeError) as exc:
            log.warning("skipping an invalid %s document: %s", kind, exc)
    return tuple(parsed)


def _tier(data: Mapping[str, Any]) -> PricingTier:
    return tier_from_json(_tier_document(data))


def _user(data: Mapping[str, Any]) -> User:
    return User(data["id"], data.get("name", ""), data["tier_id"])


def _profile(data: Mapping[str, Any]) -> ModelProfile:
    return ModelProfile.from_json(data["model_id"], data)


def _parsed(kind: str, make: Callable[[], T]) -> T | None:
    """One document, or None (logged) when it does not validate: one bad
    document written by hand must not stop the whole catalogue from loading."""
    try:
        return make()
    except (ConfigInvalid, KeyError, ValueError, TypeError) as exc:
        log.warning("skipping an invalid %s document: %s", kind, exc)
        return None


class Watching:
    """Real-time listeners on the config collections (a sync client's threads)."""

    def __init__(self, project: str, emulator_host: str, on_change: Callable[[], None]) -> None:
        self._client = client(project, emulator_host, sync=True)

        def changed(*_: Any) -> None:
            on_change()

        self._watches = [
            self._client.collection(name).on_snapshot(changed) for name in CONFIG_COLLECTIONS
        ]

    def alive(self) -> bool:
        return all(watch.is_active for watch in self._watches)

    def stop(self) -> None:
        """Unsubscribe every listener at once: one whose stream is failing waits a
        second for its thread, and there is one per collection."""

        def unsubscribe(watch: Any) -> None:
            with contextlib.suppress(Exception):  # already closed by a lost stream
                watch.unsubscribe()

        threads = [threading.Thread(target=unsubscribe, args=(w,)) for w in self._watches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._client.close()


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
                raise StoreUnavailable(f"cannot open Firestore: {_describe(exc)}") from exc

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
            raise StoreUnavailable(f"Firestore is unavailable: {_describe(exc)}") from exc
        except Exception as exc:  # the client's other errors, a transaction's ValueError
            raise StoreError(f"Firestore: {_describe(exc)}") from exc

    def watch(self, on_change: Callable[[], None]) -> Watching:
        """Call `on_change` (from another thread) whenever a config document changes."""
        try:
            return Watching(self._project, self._emulator_host, on_change)
        except _ERRORS as exc:
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
                _parsed("router_config", lambda: RouterConfig.from_json(config[0]))
                if config
                else None
            )
            return Catalogue(
                providers=_each("provider", data["providers"], provider_from_json),
                models=_each("model", data["model_configurations"], _model),
                tiers=_each("tier", data["pricing_tiers"], _tier),
                users=_each("user", data["users"], _user),
                api_keys=_each("api_key", data["api_keys"], _api_key),
                profiles=_each("profile", data["model_profiles"], _profile),
                router_config=router,
                prices=tuple(
                    sorted(
                        _each("price", data["model_prices"], _price),
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
            written: bool = await _transactional(_put_user)(db.transaction(), db, values, overwrite)
            return written

        written: bool = await self._run(work)
        return written

    async def put_api_key(self, key: ApiKey, *, overwrite: bool = True) -> bool:
        values = {
            "key_hash": key.key_hash,
            "prefix": key.prefix,
            "user_id": key.user_id,
            "name": key.name,
            "revoked": key.revoked,
            "created_at": key.created_at.isoformat(),
            "rpm": key.rpm,
            "tpm": key.tpm,
            "allowed_models": list(key.allowed_models),
            "spend_cap_nano": key.spend_cap_nano,
        }
        return await self._put("api_keys", key.key_hash, values, overwrite)

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
            points = [_price(doc.to_dict() or {}) for doc in docs]
            return sorted(points, key=lambda p: (p.effective_from, p.recorded_at))

        points: list[PricePoint] = await self._run(work)
        return points

    async def apply_due_prices(self, now: datetime) -> list[HistoryEntry]:
        """Each scheduled price in force at `now` and not yet applied, written into
        its model in a transaction that first reads the point again: of several
        instances doing this at once, one writes it and the others find it applied."""

        async def work(db: AsyncClient) -> list[HistoryEntry]:
            docs = await db.collection("model_prices").get()
            points = _each("price", docs, lambda doc: (_price(doc.to_dict() or {}), doc.reference))
            due = [
                (point.effective_from, ref)
                for point, ref in points
                if not point.applied and point.effective_from <= now
            ]
            entries = []
            for _, ref in sorted(due, key=lambda item: item[0]):
                entry: HistoryEntry | None = await _transactional(_apply_point)(
                    db.transaction(max_attempts=_ATTEMPTS), db, ref, now
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
            if entity not in _COLLECTION:
                raise StoreError(f"unknown entity {entity!r}")

        async def work(db: AsyncClient) -> list[HistoryEntry]:
            transaction = db.transaction(max_attempts=_ATTEMPTS)
            result: list[HistoryEntry] = await _transactional(_write_changes)(
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
            entries = sorted((_history(doc.to_dict() or {}) for doc in docs), key=lambda e: -e.id)
            if before is not None:
                entries = [e for e in entries if e.id < before]
            return entries[:limit]

        entries: list[HistoryEntry] = await self._run(work)
        return entries

    async def history_entry(self, entry_id: int) -> HistoryEntry | None:
        async def work(db: AsyncClient) -> HistoryEntry | None:
            doc = await db.collection("config_history").document(_history_id(entry_id)).get()
            return _history(doc.to_dict() or {}) if doc.exists else None

        entry: HistoryEntry | None = await self._run(work)
        return entry


def _tier_document(data: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: data[k] for k in ("id", "name", "markup_percent") if k in data}
    if "markup_percent" in document:
        document["markup_percent"] = str(_decimal(document["markup_percent"]))
    return document


def _history_id(number: int) -> str:
    return f"{number:012d}"


def _history(data: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        id=int(data["id"]),
        entity=data["entity"],
        entity_id=data["entity_id"],
        action=data["action"],
        actor=data.get("actor", ""),
        reason=data.get("reason", ""),
        old=None if data.get("old") is None else json.loads(data["old"]),
        new=None if data.get("new") is None else json.loads(data["new"]),
        at=_moment(data["at"]),
    )


def _transactional(function: Any) -> Any:
    return firestore.async_transactional(function)


def _stored(entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document as the entity's JSON document (what the history keeps)."""
    if entity == "model":
        return model_to_json(_model(data))
    if entity == "provider":
        return provider_to_json(provider_from_json(data))
    if entity == "tier":
        return tier_to_json(tier_from_json(_tier_document(data)))
    return dict(data)


def _to_store(entity: str, document: Mapping[str, Any]) -> dict[str, Any]:
    if entity == "model":
        model = model_from_json(document, id=str(document["id"]), created_at=EPOCH)
        return model_to_json(model)
    if entity == "provider":
        return provider_to_json(provider_from_json(document))
    if entity == "tier":
        return tier_to_json(tier_from_json(document))
    return dict(document)


async def _write_changes(
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
        olds.append((ref, _stored(entity, snapshot.to_dict() or {}) if snapshot.exists else None))
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
            transaction.set(ref, _to_store(entity, new))
            if entity == "model" and prices_of(old) != prices_of(new):
                if old is not None and entity_id not in priced:
                    first = price_point_of(old, _moment(old.get("created_at")), "", "created")
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
        db.collection("config_history").document(_history_id(entry.id)),
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


async def _put_user(
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


async def _apply_point(
    transaction: AsyncTransaction, db: AsyncClient, point_ref: Any, at: datetime
) -> HistoryEntry | None:
    """One scheduled price written into its model, if no one did it before."""
    snapshot = await point_ref.get(transaction=transaction)
    point = _parsed("price", lambda: _price(snapshot.to_dict() or {})) if snapshot.exists else None
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
    old = _stored("model", model.to_dict() or {})
    new = {**old, **point_prices(point)}
    transaction.set(model_ref, _to_store("model", new))
    reason = point.reason or f"scheduled price from {point.effective_from.isoformat()}"
    entry = HistoryEntry(number, "model", point.model_id, "update", SCHEDULE_ACTOR, reason, old,
                         new, at)  # fmt: skip
    _record(transaction, db, entry)
    transaction.set(counter_ref, {"value": number})
    return entry


async def _entity_ref(
    db: AsyncClient, transaction: AsyncTransaction, entity: str, entity_id: str
) -> Any:
    collection = db.collection(_COLLECTION[entity])
    if entity == "router_config":
        return collection.document("default")
    if entity == "model":
        # A model document written by hand may have any id: find it by model_id.
        query = collection.where(filter=FieldFilter("model_id", "==", entity_id)).limit(1)
        found = [doc async for doc in query.stream(transaction=transaction)]
        if found:
            return found[0].reference
    return collection.document(entity_id)
