"""The immutable Snapshot of the configuration that the data plane reads.

Which price wins: a model's document holds the price in force. Its price points
are the history, and only a point scheduled for later (not yet `applied`) is
read over the document: from its time on, by the snapshot, until the refresh
loop has written it into the document (`ConfigStore.apply_due_prices`). So an
edit of the document itself, through the admin API or by hand, is what the
next snapshot bills.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TypeVar

from config_store.budgets import BalanceAlert, Budget, Team
from config_store.router_config import ModelProfile, RouterConfig
from config_store.schema import (
    ApiKey,
    Catalogue,
    ModelConfig,
    PricePoint,
    PricingTier,
    Provider,
    User,
    price_point_id,
)

T = TypeVar("T")
K = TypeVar("K")


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
    # Scheduled price points not yet in force when the snapshot was made, by model.
    upcoming: Mapping[str, tuple[PricePoint, ...]] = field(default_factory=dict)
    # Every scheduled point not yet written into its model's document, soonest first.
    unapplied: tuple[PricePoint, ...] = ()
    # The id of the price point each model's document prices come from, where one is known.
    points: Mapping[str, str] = field(default_factory=dict)
    # Keys presented and found valid in this snapshot, so that a key is hashed
    # and checked once per snapshot rather than once per request. Only valid
    # keys enter, so its size is bounded by the number of keys.
    verified_keys: dict[str, tuple[ApiKey, User]] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    team_of: Mapping[str, Team] = field(default_factory=dict)  # by member's user id
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    # The budgets on each (scope, subject), for admission: one lookup per level.
    budgets_on: Mapping[tuple[str, str], tuple[Budget, ...]] = field(default_factory=dict)
    balance_alerts: Mapping[str, tuple[BalanceAlert, ...]] = field(default_factory=dict)

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
            unapplied=tuple(sorted((p for p in catalogue.prices if not p.applied), key=_effective)),
            points=MappingProxyType(_points_in_force(catalogue, loaded_at)),
            teams=_index(catalogue.teams, lambda t: t.id),
            team_of=MappingProxyType({m: t for t in catalogue.teams for m in t.members}),
            budgets=_index(catalogue.budgets, lambda b: b.id),
            budgets_on=_grouped(catalogue.budgets, lambda b: (b.scope, b.subject)),
            balance_alerts=_grouped(catalogue.balance_alerts, lambda a: a.account),
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

    def price_point(self, model: ModelConfig, at: datetime | None = None) -> str:
        """The id of the price point `priced(model, at)` bills: a scheduled point
        come due, else the latest point applied to the document, else the prices
        the model was created with."""
        later = self.upcoming.get(model.model_id) if self.upcoming else None
        if later:
            moment = at or datetime.now(UTC)
            due = [p for p in later if p.effective_from <= moment]
            if due:
                return due[-1].id
        known = self.points.get(model.model_id)
        return known if known is not None else price_point_id(model.model_id, model.created_at)

    def model(self, model_id: str) -> ModelConfig | None:
        return self.models.get(model_id)


def _grouped(items: tuple[T, ...], key: Callable[[T], K]) -> Mapping[K, tuple[T, ...]]:
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return MappingProxyType({k: tuple(v) for k, v in groups.items()})


def _effective(point: PricePoint) -> datetime:
    return point.effective_from


def _points_in_force(catalogue: Catalogue, at: datetime) -> dict[str, str]:
    """Each model's latest point in force at `at`: applied, or scheduled and come due."""
    latest: dict[str, PricePoint] = {}
    for point in catalogue.prices:
        if point.effective_from > at:
            continue
        known = latest.get(point.model_id)
        if known is None or point.effective_from >= known.effective_from:
            latest[point.model_id] = point
    return {model_id: point.id for model_id, point in latest.items()}


def _priced(
    catalogue: Catalogue, at: datetime
) -> tuple[tuple[ModelConfig, ...], dict[str, tuple[PricePoint, ...]]]:
    """Each model with the prices in force at `at`, and the points still to come.
    The document's prices are in force, unless a scheduled point came due and is
    not yet written into it; applied points are history and never override it."""
    points: dict[str, list[PricePoint]] = {}
    for point in catalogue.prices:
        if not point.applied:
            points.setdefault(point.model_id, []).append(point)
    models = []
    upcoming: dict[str, tuple[PricePoint, ...]] = {}
    for model in catalogue.models:
        scheduled = sorted(points.get(model.model_id, ()), key=_effective)
        due = [p for p in scheduled if p.effective_from <= at]
        later = tuple(p for p in scheduled if p.effective_from > at)
        models.append(due[-1].applied_to(model) if due else model)
        if later:
            upcoming[model.model_id] = later
    return tuple(models), upcoming
