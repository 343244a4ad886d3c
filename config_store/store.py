"""The `ConfigStore` protocol that every backend (SQLite, Firestore) implements.

Callers never see a backend's own exceptions: each backend translates them
into `StoreError` (or its subclass `StoreUnavailable`) where they enter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

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


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class NotFound(StoreError):
    """The entity to change or delete does not exist."""


class Invalid(StoreError):
    """A document to write does not validate (say, a row written by hand, or
    before a rule existed, and now changed); `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class Conflict(StoreError):
    """The write would break a rule of the data: a duplicate id, or a row that
    others still refer to (a provider with models, a tier with users)."""


class ConfigStore(Protocol):
    """Reads the whole catalogue at once (for the snapshot) and writes one entity at a time.

    `put_*` methods insert the entity, or replace the existing one with the same
    identity when `overwrite` is true; they return whether anything was written.
    """

    @property
    def source(self) -> str:
        """A short name for stats and health: "sqlite", "firestore"."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; return the versions applied now."""
        ...

    async def load(self) -> Catalogue: ...

    async def put_provider(self, provider: Provider, *, overwrite: bool = True) -> bool: ...

    async def put_model(self, model: ModelConfig, *, overwrite: bool = True) -> bool: ...

    async def put_tier(self, tier: PricingTier, *, overwrite: bool = True) -> bool: ...

    async def put_user(self, user: User, *, overwrite: bool = True) -> bool: ...

    async def put_api_key(self, key: ApiKey, *, overwrite: bool = True) -> bool: ...

    async def change(
        self,
        entity: str,
        entity_id: str,
        new: Mapping[str, Any] | None,
        *,
        actor: str,
        reason: str = "",
    ) -> HistoryEntry:
        """Write (or delete, with `new=None`) a versioned entity and record the
        change, old and new documents included, atomically."""
        ...

    async def change_many(
        self,
        changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        actor: str,
        reason: str = "",
    ) -> list[HistoryEntry]:
        """Several changes, all or nothing."""
        ...

    async def history(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[HistoryEntry]: ...

    async def history_entry(self, entry_id: int) -> HistoryEntry | None: ...

    async def add_price(self, point: PricePoint) -> None:
        """Schedule a model's price from `point.effective_from` on."""
        ...

    async def prices(self, model_id: str) -> list[PricePoint]:
        """A model's price points, oldest first."""
        ...

    async def apply_due_prices(self, now: datetime) -> list[HistoryEntry]:
        """Write each scheduled price point in force at `now` and not yet applied into
        its model, mark it applied and record the change (actor `schedule`); each
        point once, whichever instance gets there first. Returns the changes made."""
        ...

    async def put_sync_status(self, provider: str, status: Mapping[str, Any]) -> None:
        """The last discovery run's outcome for a provider (a JSON document)."""
        ...

    async def sync_statuses(self) -> dict[str, dict[str, Any]]: ...
