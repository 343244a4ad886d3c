"""The configuration entities, as immutable dataclasses.

Prices are `Decimal` USD per million tokens (stored as decimal strings);
balances and costs are integer nano-USD. Nothing here does I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from config_store.router_config import ModelProfile, RouterConfig

if TYPE_CHECKING:  # the catalogue names them; budgets.py reads documents through documents.py
    from config_store.budgets import BalanceAlert, Budget, Team

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream that speaks one wire format (`kind`)."""

    id: str
    kind: str  # "openai" | "anthropic" | "gemini" | "mock"
    base_url: str = ""
    api_key_env: str = ""  # environment variable that holds the key, e.g. OPENAI_API_KEY
    base_url_env: str = ""  # environment variable that overrides base_url
    api_key: str = ""  # a key stored in the database (plain until encryption lands)
    enabled: bool = True
    display_name: str = ""
    rpm: int = 0  # requests per minute through this provider; 0 = no limit
    tpm: int = 0  # tokens per minute (prompt + allowed output); 0 = no limit
    fallback_priority: int = 100  # lower is tried first among a model's fallbacks
    connect_timeout: float = 0.0  # seconds; 0 = the gateway's default
    read_timeout: float = 0.0  # seconds to the first byte and between chunks; 0 = none
    total_timeout: float = 0.0  # seconds for the whole answer; 0 = the gateway's default


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One row of `model_configurations`: the catalogue's shape plus
    what the data plane needs (upstream name, output cap, tokenizer, cache prices)."""

    id: str  # numeric string, unique
    model_id: str  # the name clients use
    provider: str  # Provider.id
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    context_window_size: int
    max_output_tokens: int
    is_active: bool = True
    created_at: datetime = EPOCH
    upstream_model: str = ""  # name sent to the provider; empty means model_id
    tokenizer: str = "o200k_base"  # "o200k_base" | "cl100k_base" | "approx"
    cached_input_price_per_million: Decimal | None = None  # cache reads
    cache_write_price_per_million: Decimal | None = None  # cache writes (Anthropic)
    note: str = ""  # where the price comes from, or the assumption behind it
    mode: str = "chat"  # "chat" | "embedding" | "completion" (legacy): which endpoint serves it
    fallbacks: tuple[str, ...] = ()  # model ids to try, in order, when this one fails
    fallback_priority: int = 100  # lower is tried first among a model's fallbacks
    needs_price: bool = False  # discovered at a provider, not priced yet
    deprecated_at: datetime | None = None  # when its provider stopped listing it

    @property
    def upstream_name(self) -> str:
        return self.upstream_model or self.model_id


@functools.lru_cache(maxsize=1024)  # asked for each request of a model with no point recorded
def price_point_id(model_id: str, effective_from: datetime) -> str:
    return f"{model_id}@{iso(effective_from)}"


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A model's prices from `effective_from` on (USD per million tokens).

    `applied`: the prices are in the model's document (a change made at once, or
    a scheduled one written in when it came due). Left out, it is true unless
    the point was recorded before it takes effect."""

    model_id: str
    effective_from: datetime
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    cached_input_price_per_million: Decimal | None = None
    cache_write_price_per_million: Decimal | None = None
    actor: str = ""
    reason: str = ""
    recorded_at: datetime = EPOCH
    applied: bool | None = None

    def __post_init__(self) -> None:
        if self.applied is None:
            object.__setattr__(self, "applied", self.effective_from <= self.recorded_at)

    @property
    def id(self) -> str:
        """A point is known by its model and the moment it takes effect."""
        return price_point_id(self.model_id, self.effective_from)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_id": self.model_id,
            "effective_from": iso(self.effective_from),
            "input_price_per_million": str(self.input_price_per_million),
            "output_price_per_million": str(self.output_price_per_million),
            "cached_input_price_per_million": _text(self.cached_input_price_per_million),
            "cache_write_price_per_million": _text(self.cache_write_price_per_million),
            "actor": self.actor,
            "reason": self.reason,
            "recorded_at": iso(self.recorded_at),
            "applied": bool(self.applied),
        }

    def applied_to(self, model: ModelConfig) -> ModelConfig:
        return replace(
            model,
            input_price_per_million=self.input_price_per_million,
            output_price_per_million=self.output_price_per_million,
            cached_input_price_per_million=self.cached_input_price_per_million,
            cache_write_price_per_million=self.cache_write_price_per_million,
        )


@dataclass(frozen=True, slots=True)
class PricingTier:
    id: str
    name: str
    markup_percent: Decimal


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    tier_id: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_hash: str  # sha256 hex of the key; the key itself is never stored
    prefix: str  # the first characters, to recognise a key in lists and logs
    user_id: str
    name: str = ""
    revoked: bool = False
    created_at: datetime = EPOCH
    rpm: int = 0  # requests per minute with this key; 0 = no limit
    tpm: int = 0  # tokens per minute (prompt + allowed output); 0 = no limit
    allowed_models: tuple[str, ...] = ()  # model ids (or "auto") it may use; empty = all
    spend_cap_nano: int | None = None  # the most this key may ever spend; None = no cap

    @property
    def id(self) -> str:
        """A public handle for the key in admin routes and the ledger."""
        return self.key_hash[:16]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the data plane reads, as loaded from a store in one go."""

    providers: tuple[Provider, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    tiers: tuple[PricingTier, ...] = ()
    users: tuple[User, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    profiles: tuple[ModelProfile, ...] = ()
    router_config: RouterConfig | None = None  # None: never set, the defaults apply
    prices: tuple[PricePoint, ...] = ()  # every model's price history
    teams: tuple[Team, ...] = ()
    budgets: tuple[Budget, ...] = ()
    balance_alerts: tuple[BalanceAlert, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change to a config entity: who made it, when, why, and the entity's
    JSON document before and after (None where it did not exist)."""

    id: int
    entity: str  # "router_config", "model_profile", ...
    entity_id: str
    action: str  # "create" | "update" | "delete"
    actor: str
    reason: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "old": self.old,
            "new": self.new,
            "at": iso(self.at),
        }
