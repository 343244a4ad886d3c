"""The long-lived objects of one gateway process, built and torn down by the lifespan.

Handlers reach them through `request.app.state.services`; nothing lives in a
module global.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from billing.balance_view import BalanceView, StoreState
from billing.ledger_types import Ledger, LedgerError
from billing.meter import Meter
from billing.reports import Reports
from billing.sqlite_ledger import SqliteLedger
from billing.tokens import TokenCounter
from config_store.cache import ConfigCache
from config_store.defaults import BUILTIN_DEFAULTS
from config_store.reachability import Reachability
from config_store.store import ConfigStore
from gateway.alerts.thresholds import Thresholds
from gateway.alerts.webhook import DeliveryLog, MemoryDeliveryLog, WebhookSender
from gateway.autoroute.decision import PRESETS
from gateway.autoroute.sticky import StickyRoutes
from gateway.backends import (
    make_alert_log,
    make_balance_view,
    make_ledger,
    make_reports,
    make_store,
)
from gateway.background import Supervisor
from gateway.console.access import SignedOut
from gateway.errors import GatewayError, unavailable
from gateway.observe import Metrics
from gateway.ops.cron import Cron
from gateway.ops.discovery import Discovery
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import ChatProvider, credentials
from gateway.providers.gemini import GeminiProvider
from gateway.providers.http1 import Timeouts
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.upstream import Upstream
from gateway.providers.vault import Vault
from gateway.proxy.core import Core
from gateway.proxy.fallback import Cooldowns
from gateway.proxy.ids import RequestIds
from gateway.proxy.ratelimit import RateLimiter
from gateway.settings import Settings

log = logging.getLogger("gateway")


@dataclass
class Services:
    settings: Settings
    admin_keys: Mapping[str, str]  # by name; "admin" is the main key
    counter: TokenCounter
    cache: ConfigCache
    ledger: Ledger
    meter: Meter
    upstream: Upstream
    providers: dict[str, ChatProvider]  # by Provider.kind
    vault: Vault
    reports: Reports
    metrics: Metrics
    discovery: Discovery
    request_ids: RequestIds = field(default_factory=RequestIds)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    cooldowns: Cooldowns = field(default_factory=Cooldowns)
    sticky: StickyRoutes = field(default_factory=StickyRoutes)
    signed_out: SignedOut = field(default_factory=SignedOut)  # console sessions ended here
    background: Supervisor = field(default_factory=Supervisor)
    # Firestore only: what this instance has seen of the shared store lately, and
    # how fresh its view of the balances is.
    reach: Reachability | None = None
    view: BalanceView | None = None
    # Budget and balance alerts: where their deliveries are recorded, and the sender.
    alert_log: DeliveryLog = field(default_factory=MemoryDeliveryLog)
    alert_sender: WebhookSender | None = None
    ledger_ready: bool = False
    core: Core = field(init=False)  # what the metered path uses
    _ledger_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    admin_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # serialises balance credits

    def __post_init__(self) -> None:
        settings, reveal = self.settings, self.vault.reveal
        self.core = Core(
            cache=self.cache,
            counter=self.counter,
            meter=self.meter,
            limiter=self.limiter,
            cooldowns=self.cooldowns,
            sticky=self.sticky,
            request_ids=self.request_ids,
            adapters=MappingProxyType(self.providers),
            credentials=lambda provider: credentials(provider, settings.env, reveal),
            billable=self.ensure_ledger,
            fresh=self.ensure_fresh,
            router_source=settings.router_source,
            max_retry_wait=settings.max_retry_wait,
        )

    async def ensure_ledger(self) -> None:
        """Paid requests need the store and a ledger that writes: 503 until both
        are up, and while the ledger cannot write (it finds its way back by itself)
        no request is taken, so that no provider is paid for one that could not
        be recorded."""
        if self.ledger_ready and self.cache.store_ok:
            if not self.ledger.writable:
                raise unavailable(
                    "The ledger cannot record requests right now, so none is taken; "
                    "try again shortly.",
                    code="ledger_unavailable",
                )
            return
        if not self.cache.store_ok:
            raise unavailable(
                "The configuration store is unavailable, so requests cannot be billed; "
                "the gateway is serving its built-in catalogue until the store is back.",
                code="store_unavailable",
            )
        async with self._ledger_lock:
            if not self.ledger_ready:
                try:
                    await self.ledger.start()
                except LedgerError as exc:
                    log.error("ledger unavailable: %s", exc)
                    raise unavailable(
                        "The ledger is unavailable, so requests cannot be billed.",
                        code="store_unavailable",
                    ) from exc
                if self.view is not None:
                    self.view.started()
                self.ledger_ready = True

    def store_state(self) -> StoreState | None:
        """Firestore: the store's reachability, the listeners, the balance view and
        the outbox (None on SQLite)."""
        if self.reach is None or self.view is None:
            return None
        return StoreState(
            reachable=self.cache.store_ok and self.reach.reachable,
            failures=self.reach.failures(),
            listening=self.cache.listening,
            view=self.view.state(),
            shipping=self.view.shipping(),
        )

    def ensure_fresh(self) -> None:
        """With several instances: 503 while this one's view of the balances is
        stale or its ledger rows do not ship (the overspend bound depends on both)."""
        if self.view is None:
            return
        refusal = self.view.refusal()
        if refusal is not None:
            raise unavailable(
                f"The balance store is unavailable, so requests cannot be billed right now: "
                f"{refusal}.",
                code="store_unavailable",
            )


def _provider_timeouts(cache: ConfigCache, settings: Settings) -> Callable[[str], Timeouts | None]:
    """A provider's own timeouts (from its row), where it has any."""
    made: dict[tuple[float, float, float], Timeouts] = {}

    def lookup(provider_id: str) -> Timeouts | None:
        row = cache.snapshot.providers.get(provider_id)
        if row is None or not (row.connect_timeout or row.read_timeout or row.total_timeout):
            return None
        key = (row.connect_timeout, row.read_timeout, row.total_timeout)
        timeout = made.get(key)
        if timeout is None:
            timeout = made[key] = Timeouts(
                connect=row.connect_timeout or settings.upstream_connect_timeout or None,
                read=row.read_timeout or settings.upstream_read_timeout or None,
                total=row.total_timeout or settings.upstream_total_timeout or None,
            )
        return timeout

    return lookup


def _cache_stats(cache: ConfigCache) -> dict[str, Any]:
    age = (datetime.now(UTC) - cache.snapshot.loaded_at).total_seconds()
    return {**cache.stats(), "snapshot_age_seconds": age}


@asynccontextmanager
async def running(
    settings: Settings,
    admin_key: str,
    counter: TokenCounter | None = None,
    *,
    schedule: bool = True,
) -> AsyncIterator[Services]:
    """Build every service, start them, and stop them in reverse order.

    `counter` may be passed in to share one loaded tokenizer between apps (tests)."""
    counter = counter or TokenCounter(settings.tiktoken_cache_dir)
    reach = Reachability() if settings.store == "firestore" else None
    ledger = make_ledger(settings, reach)
    # On SQLite the ledger's writer also makes the store's writes: one writer per file.
    store = make_store(settings, ledger)
    cache = ConfigCache(
        store,
        BUILTIN_DEFAULTS,
        ttl_seconds=settings.cache_ttl_seconds,
        retry_seconds=settings.store_retry_seconds,
        reach=reach,
        names=PRESETS,
    )
    meter = Meter(ledger, zone=ZoneInfo(settings.budget_zone))
    view = make_balance_view(settings, ledger, meter)
    upstream = Upstream(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        total_timeout=settings.upstream_total_timeout,
        max_body_bytes=settings.upstream_max_body_bytes,
        max_line_bytes=settings.upstream_max_line_bytes,
        max_stream_bytes=settings.upstream_max_stream_bytes,
    )
    metrics = Metrics(lambda: _cache_stats(cache))
    vault = Vault(settings.secret_key)
    providers: dict[str, ChatProvider] = {
        "openai": OpenAIProvider(upstream),
        "anthropic": AnthropicProvider(upstream),
        "gemini": GeminiProvider(upstream),
        "mock": MockProvider(counter),
    }
    services = Services(
        settings=settings,
        admin_keys=MappingProxyType({"admin": admin_key, **settings.admin_keys}),
        counter=counter,
        cache=cache,
        ledger=ledger,
        meter=meter,
        upstream=upstream,
        providers=providers,
        vault=vault,
        reports=make_reports(settings, store),
        metrics=metrics,
        discovery=Discovery(
            cache,
            providers,
            settings.env,
            vault.reveal,
            metrics,
            None if settings.sync_cron == "off" else Cron.parse(settings.sync_cron),
        ),
        cooldowns=Cooldowns(
            failures=settings.cooldown_failures,
            window=settings.cooldown_window,
            seconds=settings.cooldown_seconds,
        ),
        reach=reach,
        view=view,
    )
    upstream.timeouts_for = _provider_timeouts(cache, settings)
    _wire_alerts(services, store)
    ledger.on_batch = services.metrics.ledger_batch_written
    ledger.on_checkpoint = services.metrics.ledger_checkpointed
    metrics.watch_ledger(lambda: (services.ledger_ready, ledger.health()))
    if view is not None:
        metrics.watch_store(services.store_state)
    await upstream.start()
    if not await cache.refresh():
        log.error("config store unavailable at start-up; serving built-in defaults")
    else:
        try:
            await services.ensure_ledger()
        except GatewayError:
            log.error("ledger unavailable at start-up")
    background = services.background
    background.start("config_refresh", cache.run)
    await services.discovery.load()
    if schedule and settings.sync_cron != "off":
        background.start("model_sync_schedule", services.discovery.schedule_forever)
    if view is not None:
        background.start("ledger_shipping", view.ledger.ship_forever)
        background.start("balance_resync", view.resync_forever)
    if services.alert_sender is not None:
        background.start("alert_webhook", services.alert_sender.run)
    # Everything built so far lives as long as the process: move it out of the
    # collector's sight, so that collections triggered by request garbage do
    # not walk it again and again.
    gc.collect()
    gc.freeze()
    release_free_memory()
    try:
        yield services
    finally:
        await background.stop()
        if services.alert_sender is not None:
            await services.alert_sender.close()
        await cache.stop()
        if services.ledger_ready or isinstance(ledger, SqliteLedger):
            # The store may have started the SQLite writer before any request did.
            await ledger.close()
        await upstream.close()


def _wire_alerts(services: Services, store: ConfigStore) -> None:
    """Every committed charge is checked against its budgets' alert thresholds and
    its account's balance alerts; what they set off is sent to the webhook (or,
    with none configured, recorded as skipped) and listed in GET /admin/alerts."""
    settings = services.settings
    services.alert_log = make_alert_log(settings, store, services.ledger)
    sender = WebhookSender(
        settings.alert_webhook_url,
        settings.alert_webhook_secret,
        services.alert_log,
        on_result=services.metrics.alert,
    )
    services.alert_sender = sender
    thresholds = Thresholds(
        services.meter, lambda: services.cache.snapshot, sender.fire, services.metrics.alert
    )
    services.meter.on_charge = thresholds.after_charge


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the system (glibc only): start-up
    parses the catalogue and the tokenizer's file, and what it freed would
    otherwise stay counted in the process's memory for its whole life."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
