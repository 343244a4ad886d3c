"""The in-memory Snapshot the data plane reads, and the cache that refreshes it.

The request path never touches the store: it reads `ConfigCache.snapshot`, an
immutable object swapped in one assignment when a refresh succeeds. A refresh
that fails keeps the last good snapshot; a store that cannot be opened at start
leaves the built-in defaults serving, and the stats say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from config_store.router_config import ModelProfile, RouterConfig
from config_store.schema import (
    ApiKey,
    Catalogue,
    ModelConfig,
    PricePoint,
    PricingTier,
    Provider,
    User,
)
from config_store.store import ConfigStore, StoreError

log = logging.getLogger("gateway.cache")

DEFAULTS_SOURCE = "defaults"
T = TypeVar("T")


def _index(items: tuple[T, ...], key: Callable[[T], str]) -> Mapping[str, T]:
    return MappingProxyType({key(item): item for item in items})


@dataclass(frozen=True, slots=True)
class Snapshot:
    providers: Mapping[str, Provider]
    models: Mapping[str, ModelConfig]  # by model_id, inactive ones included
    tiers: Mapping[str, PricingTier]
    users: Mapping[str, User]
    keys: Mapping[str, ApiKey]  # by key hash
    source: str
    loaded_at: datetime
    active_models: tuple[ModelConfig, ...] = field(default=())
    profiles: Mapping[str, ModelProfile] = field(default_factory=dict)  # by model_id
    router: RouterConfig = field(default_factory=RouterConfig)  # the defaults if never set
    # Price points that were not yet in force when the snapshot was made, by model.
    upcoming: Mapping[str, tuple[PricePoint, ...]] = field(default_factory=dict)
    # Keys presented and found valid in this snapshot, so that a key is hashed
    # and checked once per snapshot rather than once per request. Only valid
    # keys enter, so its size is bounded by the number of keys.
    verified_keys: dict[str, tuple[ApiKey, User]] = field(default_factory=dict)

    @classmethod
    def of(cls, catalogue: Catalogue, source: str, loaded_at: datetime) -> Snapshot:
        models, upcoming = _priced(catalogue, loaded_at)
        return cls(
            providers=_index(catalogue.providers, lambda p: p.id),
            models=_index(models, lambda m: m.model_id),
            tiers=_index(catalogue.tiers, lambda t: t.id),
            users=_index(catalogue.users, lambda u: u.id),
            keys=_index(catalogue.api_keys, lambda k: k.key_hash),
            source=source,
            loaded_at=loaded_at,
            active_models=tuple(
                sorted((m for m in models if m.is_active), key=lambda m: m.model_id)
            ),
            profiles=_index(catalogue.profiles, lambda p: p.model_id),
            router=catalogue.router_config or RouterConfig(),
            upcoming=MappingProxyType(upcoming),
        )

    def priced(self, model: ModelConfig, at: datetime | None = None) -> ModelConfig:
        """`model` with the prices in force at `at` (default: now); a scheduled
        price may have come into force since the snapshot was made."""
        later = self.upcoming.get(model.model_id) if self.upcoming else None
        if not later:
            return model
        moment = at or datetime.now(UTC)
        due = [p for p in later if p.effective_from <= moment]
        return due[-1].applied_to(model) if due else model

    def model(self, model_id: str) -> ModelConfig | None:
        return self.models.get(model_id)


def _priced(
    catalogue: Catalogue, at: datetime
) -> tuple[tuple[ModelConfig, ...], dict[str, tuple[PricePoint, ...]]]:
    """Each model with the prices in force at `at`, and the points still to come."""
    points: dict[str, list[PricePoint]] = {}
    for point in catalogue.prices:
        points.setdefault(point.model_id, []).append(point)
    models = []
    upcoming: dict[str, tuple[PricePoint, ...]] = {}
    for model in catalogue.models:
        history = sorted(points.get(model.model_id, ()), key=lambda p: p.effective_from)
        in_force = [p for p in history if p.effective_from <= at]
        later = tuple(p for p in history if p.effective_from > at)
        models.append(in_force[-1].applied_to(model) if in_force else model)
        if later:
            upcoming[model.model_id] = later
    return tuple(models), upcoming


def _go_duration(seconds: float) -> str:
    """600 -> "10m", 90 -> "1m30s": Go's duration text, which operators' stats tools expect."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


class ConfigCache:
    """Holds the current Snapshot; refreshes it on a TTL, on demand, and on start."""

    def __init__(
        self,
        store: ConfigStore,
        defaults: Catalogue,
        *,
        ttl_seconds: float = 600.0,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._connected = False
        self._lock = asyncio.Lock()
        self.snapshot = Snapshot.of(defaults, DEFAULTS_SOURCE, datetime.now(UTC))
        self._refreshed_at = clock()
        self._last_refresh_ok = True
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        self.refresh_failures = 0
        self.last_error: str | None = None
        # Real-time listeners, for stores that have them (Firestore).
        self._watching: Any = None
        self._listen_pending: asyncio.Task[None] | None = None
        self._changes_pending = False  # a listener saw a change no refresh has read yet
        self.listener_refreshes = 0
        self.listener_failures = 0
        self.listener_error: str | None = None

    @property
    def store(self) -> ConfigStore:
        return self._store

    @property
    def store_ok(self) -> bool:
        """True once the snapshot comes from the store (not the built-in defaults)."""
        return self.snapshot.source != DEFAULTS_SOURCE

    def labels(self, model: str, provider: str) -> tuple[str, str]:
        """Bounded metric labels: names the snapshot knows, else "other" ("-" if none)."""
        snapshot = self.snapshot
        model_label = model if model in snapshot.models else ("other" if model else "-")
        provider_label = (
            provider if provider in snapshot.providers else ("other" if provider else "-")
        )
        return model_label, provider_label

    def model(self, model_id: str) -> ModelConfig | None:
        found = self.snapshot.models.get(model_id)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def refresh(self) -> bool:
        """Load a new snapshot from the store. On failure keep the current one."""
        async with self._lock:
            try:
                if not self._connected:
                    await self._store.open()
                    await self._store.migrate()
                    self._connected = True
                catalogue = await self._store.load()
                snapshot = Snapshot.of(catalogue, self._store.source, datetime.now(UTC))
            except Exception as exc:  # whatever the store did, the last snapshot serves on
                self.refresh_failures += 1
                self.last_error = str(exc) if isinstance(exc, StoreError) else repr(exc)[:500]
                self._refreshed_at = self._clock()
                log.warning(
                    "config refresh failed; keeping the %s snapshot: %s",
                    self.snapshot.source,
                    self.last_error,
                    exc_info=not isinstance(exc, StoreError),
                )
                self._last_refresh_ok = False
                return False
            self.snapshot = snapshot
            self._last_refresh_ok = True
            self._refreshed_at = self._clock()
            self.refreshes += 1
            return True

    def should_refresh(self) -> bool:
        return self._clock() - self._refreshed_at >= self._interval()

    def _interval(self) -> float:
        # While on defaults, or after a refresh failed, retry sooner than the TTL.
        healthy = self.store_ok and self._last_refresh_ok
        return self._ttl if healthy else min(self._ttl, self._retry)

    async def run(self) -> None:
        """Refresh on the TTL (and watch the listeners) until cancelled; the
        lifespan runs it under supervision."""
        self._listen()
        while True:
            wait = self._refreshed_at + self._interval() - self._clock()
            # Wake at least every second while listening, to notice a lost listener.
            await asyncio.sleep(
                min(max(wait, 0.05), 1.0) if self._can_listen() else max(wait, 0.05)
            )
            self._check_listener()
            if self.should_refresh():
                await self.refresh()

    def _can_listen(self) -> bool:
        return callable(getattr(self._store, "watch", None))

    @property
    def listening(self) -> bool | None:
        """None when the store has no listeners; else whether they are up."""
        if not self._can_listen():
            return None
        return self._watching is not None and bool(self._watching.alive())

    def _listen(self) -> None:
        """Subscribe to the store's changes; each change refreshes the snapshot soon
        after (changes arriving together make one refresh)."""
        if not self._can_listen() or self._watching is not None:
            return
        loop = asyncio.get_running_loop()

        def changed() -> None:  # on a listener thread
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._changed)

        try:
            self._watching = self._store.watch(changed)  # type: ignore[attr-defined]
        except StoreError as exc:
            self.listener_failures += 1
            self.listener_error = str(exc)
            log.warning("config listeners unavailable; refreshing on the TTL: %s", exc)

    def _changed(self) -> None:
        self._changes_pending = True
        if self._listen_pending is None or self._listen_pending.done():
            self._listen_pending = asyncio.get_running_loop().create_task(self._listened())

    async def _listened(self) -> None:
        """Refresh until no change is left unseen: a change that arrives while a
        refresh is already reading the store gets a refresh of its own (changes
        arriving together still make one), and a refresh that fails is tried
        again soon rather than at the next TTL."""
        while self._changes_pending:
            self._changes_pending = False
            await asyncio.sleep(0.05)
            if await self.refresh():
                self.listener_refreshes += 1
            else:
                self._changes_pending = True
                await asyncio.sleep(self._retry)

    def _check_listener(self) -> None:
        """A lost listener: count it, fall back on the TTL, and listen again."""
        if self._watching is None or self._watching.alive():
            if self._watching is None and self._can_listen() and self.store_ok:
                self._listen()
            return
        self.listener_failures += 1
        self.listener_error = "a config listener stopped"
        log.warning("config listener lost; refreshing on the TTL until it is back")
        self._watching.stop()
        self._watching = None
        self._listen()

    def stop_listening(self) -> None:
        """Drop the listeners (as a lost connection would); they come back on the next check."""
        if self._watching is not None:
            self._watching.stop()

    async def stop(self) -> None:
        """Stop refreshing and listening, and close the store."""
        if self._watching is not None:
            watching, self._watching = self._watching, None
            await asyncio.to_thread(watching.stop)
        if self._listen_pending is not None:
            self._listen_pending.cancel()
        async with self._lock:
            self._connected = False
            await self._store.close()

    def stats(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "model_configs_count": len(snap.models),
            "active_models_count": len(snap.active_models),
            "last_refresh": snap.loaded_at.isoformat().replace("+00:00", "Z"),
            "cache_ttl": _go_duration(self._ttl),
            "cache_ttl_seconds": self._ttl,
            "should_refresh": self.should_refresh(),
            "source": snap.source,
            "hits": self.hits,
            "misses": self.misses,
            "refreshes": self.refreshes,
            "refresh_failures": self.refresh_failures,
            "last_error": self.last_error,
            "listening": self.listening,
            "listener_refreshes": self.listener_refreshes,
            "listener_failures": self.listener_failures,
            "listener_error": self.listener_error,
        }
