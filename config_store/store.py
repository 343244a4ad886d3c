"""The `ConfigStore` protocol that every backend (SQLite, Firestore) implements.

Callers never see a backend's own exceptions: each backend translates them
into `StoreError` (or its subclass `StoreUnavailable`) where they enter.
"""

from __future__ import annotations

from typing import Protocol

from config_store.schema import ApiKey, Catalogue, ModelConfig, PricingTier, Provider, User


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


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
