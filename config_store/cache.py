"""The cache that holds the data plane's Snapshot and refreshes it.

The request path never touches the store: it reads `ConfigCache.snapshot`, an
immutable object swapped in one assignment when a refresh succeeds. A refresh
that fails keeps the last good snapshot; a store that cannot be opened at start
leaves the built-in defaults serving, and the stats say so. Which price a
snapshot bills is told in `config_store.snapshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from config_store.reachability import Reachability
from config_store.schema import Catalogue, ModelConfig
from config_store.snapshot import Snapshot
from config_store.store import ConfigStore, StoreError

log = logging.getLogger("gateway.cache")

DEFAULTS_SOURCE = "defaults"


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
        reach: Reachability | None = None,
        names: Collection[str] = (),
    ) -> None:
        self._names = frozenset(names)  # model names that are no model's id, such as "auto"
        self._store = store
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._reach = reach
        self._recoveries_seen = reach.recoveries if reach is not None else 0
        self._unreachable_noted = False
        self._prices_retry_at = 0.0  # on the clock: no retry of a failed price write before
        self.scheduled_applied = 0  # scheduled prices this process wrote into their models
        self.schedule_failures = 0
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
        known = model in snapshot.models or model in self._names
        model_label = model if known else ("other" if model else "-")
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
                if self._reach is not None:
                    self._reach.failed("refresh", self.last_error[:300])
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
            if self._reach is not None:
                self._reach.succeeded("refresh")
            return True

    def should_refresh(self) -> bool:
        return self._clock() - self._refreshed_at >= self._interval()

    def _interval(self) -> float:
        # While on defaults, or after a refresh failed, retry sooner than the TTL.
        healthy = self.store_ok and self._last_refresh_ok
        return self._ttl if healthy else min(self._ttl, self._retry)

    async def run(self) -> None:
        """Refresh on the TTL, watch the listeners and write scheduled prices into
        their models when they come due, until cancelled; the lifespan runs it
        under supervision."""
        self._listen()
        while True:
            await asyncio.sleep(self._next_wake())
            await self._check_listener()
            if self._prices_due():
                await self._apply_prices()
            if self.should_refresh():
                await self.refresh()

    def _next_wake(self) -> float:
        # At least every second: to notice a lost listener, or a price scheduled since.
        wait = min(self._refreshed_at + self._interval() - self._clock(), 1.0)
        if self.snapshot.unapplied:
            due_in = (self.snapshot.unapplied[0].effective_from - datetime.now(UTC)).total_seconds()
            wait = min(wait, max(due_in, self._prices_retry_at - self._clock()))
        return max(wait, 0.05)

    def _prices_due(self) -> bool:
        unapplied = self.snapshot.unapplied
        return (
            bool(unapplied)
            and unapplied[0].effective_from <= datetime.now(UTC)
            and self._clock() >= self._prices_retry_at
        )

    async def _apply_prices(self) -> None:
        """Write the scheduled prices that came due into their models' documents
        (each once, whichever instance gets there first), then refresh."""
        try:
            entries = await self._store.apply_due_prices(datetime.now(UTC))
        except Exception as exc:  # retried; meanwhile the snapshot bills them anyway
            self.schedule_failures += 1
            self._prices_retry_at = self._clock() + self._retry
            log.warning("scheduled prices not written yet, will retry: %s", exc)
            return
        self.scheduled_applied += len(entries)
        if await self.refresh() and self._prices_due():
            # Still due after a write and a refresh: not ours to write; try later.
            self._prices_retry_at = self._clock() + self._retry

    def _can_listen(self) -> bool:
        return callable(getattr(self._store, "watch", None))

    @property
    def listening(self) -> bool | None:
        """None when the store has no listeners; else whether they are up. A
        listener's stream may fail while its object still says it is active, so
        while the store does not answer the listeners count as down."""
        if not self._can_listen():
            return None
        reachable = self._reach is None or self._reach.reachable
        return reachable and self._watching is not None and bool(self._watching.alive())

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

    async def _check_listener(self) -> None:
        """A lost listener: count it, fall back on the TTL, and listen again. While
        the store does not answer, the listeners count as down; once it answers
        again they are replaced (and the snapshot refreshed), whatever they say."""
        if self._reach is not None:
            if not self._reach.reachable:
                if not self._unreachable_noted and self._watching is not None:
                    self._unreachable_noted = True
                    self.listener_failures += 1
                    self.listener_error = "the store does not answer: listeners count as down"
                    log.warning("config store unreachable; listeners count as down")
                return
            if self._reach.recoveries != self._recoveries_seen:
                self._recoveries_seen = self._reach.recoveries
                self._unreachable_noted = False
                if self._watching is not None:
                    log.warning("config store answers again; listening anew")
                    self._replace_listeners()
                    await self.refresh()  # what changed while nobody heard it
                return
        if self._watching is None or self._watching.alive():
            if self._watching is None and self._can_listen() and self.store_ok:
                self._listen()
            return
        self.listener_failures += 1
        self.listener_error = "a config listener stopped"
        log.warning("config listener lost; refreshing on the TTL until it is back")
        self._replace_listeners()

    def _replace_listeners(self) -> None:
        if self._watching is not None:
            _stop_in_background(self._watching)
            self._watching = None
        self._listen()

    def stop_listening(self) -> None:
        """Drop the listeners (as a lost connection would); they come back on the next check."""
        if self._watching is not None:
            self._watching.stop()

    async def stop(self) -> None:
        """Stop refreshing and listening, and close the store. Listeners are stopped
        on a thread of their own, waited for a few seconds at most: one whose
        stream is failing may take longer, and nothing is lost by not waiting."""
        if self._watching is not None:
            watching, self._watching = self._watching, None
            await asyncio.to_thread(_stop_in_background(watching).join, 5.0)
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
            "scheduled_prices_pending": len(snap.unapplied),
            "scheduled_prices_applied": self.scheduled_applied,
            "scheduled_price_failures": self.schedule_failures,
        }


def _stop_in_background(watching: Any) -> threading.Thread:
    """Stop listeners on a daemon thread: it never holds up the loop or the exit."""
    thread = threading.Thread(target=watching.stop, name="gateway-listener-stop", daemon=True)
    thread.start()
    return thread
