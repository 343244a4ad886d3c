"""What the metered path uses, and nothing more: built once by `gateway.services`
and passed to every stage, so that the proxy never reaches for the whole process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from billing.meter import Meter
from billing.tokens import TokenCounter
from config_store.cache import ConfigCache
from config_store.schema import Provider
from gateway.autoroute.sticky import StickyRoutes
from gateway.providers.base import ChatProvider
from gateway.proxy.fallback import Cooldowns
from gateway.proxy.ids import RequestIds
from gateway.proxy.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class Core:
    cache: ConfigCache  # the configuration snapshot, swapped whole on refresh
    counter: TokenCounter
    meter: Meter  # balances and open holds
    limiter: RateLimiter
    cooldowns: Cooldowns
    sticky: StickyRoutes  # the auto-router's conversation memory
    request_ids: RequestIds
    adapters: Mapping[str, ChatProvider]  # by Provider.kind
    credentials: Callable[[Provider], tuple[str, str]]  # a provider's base URL and key
    # 503 unless a request can be billed now (store up, ledger writing)
    billable: Callable[[], Awaitable[None]]
    # 503 while this instance's view of the balances is stale (Firestore)
    fresh: Callable[[], None]
    router_source: str  # where the auto-router's dials come from
    max_retry_wait: float  # the longest Retry-After a fallback loop waits out
