"""`gateway seed`: the demo catalogue, a demo user with $100.00 and a demo key.

Idempotent and never destructive: rows that exist are left as they are (an
operator's price change survives a re-seed), and the opening balance is a
ledger row with a fixed id, so it is credited once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from billing.ledger_types import LedgerEntry
from billing.pricing import NANO_PER_USD
from config_store.catalogue import DEMO_MODELS, DEMO_PROVIDERS, FREE_TIER
from config_store.profiles import DEMO_PROFILES
from config_store.router_config import RouterConfig
from config_store.schema import ApiKey, User
from config_store.store import ConfigStore
from gateway.backends import make_ledger, make_store
from gateway.proxy.auth import hash_key, key_prefix, new_key
from gateway.settings import Settings

DEMO_USER = User(id="demo", name="Demo User", tier_id=FREE_TIER.id)
DEMO_BALANCE_NANO = 100 * NANO_PER_USD
DEMO_TOPUP_ID = "seed:demo:opening-balance"


@dataclass(frozen=True, slots=True)
class SeedReport:
    providers: int
    models: int
    tiers: int
    users: int
    keys: int
    credited_nano: int

    def __str__(self) -> str:
        return (
            f"seeded: {self.providers} providers, {self.models} models, {self.tiers} tiers, "
            f"{self.users} users, {self.keys} keys added; "
            f"${self.credited_nano / NANO_PER_USD:.2f} credited"
        )


def write_secret(path: Path, value: str) -> None:
    """Create a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")


def read_secret(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def admin_key(settings: Settings, *, create: bool) -> str | None:
    """GATEWAY_ADMIN_KEY, else the key kept in the data directory (made on first use)."""
    if settings.admin_key:
        return settings.admin_key
    existing = read_secret(settings.admin_key_file)
    if existing is None and create:
        existing = new_key("gwadmin-")
        write_secret(settings.admin_key_file, existing)
    return existing


async def seed(settings: Settings) -> SeedReport:
    store = make_store(settings)
    await store.open()
    try:
        await store.migrate()
        providers = [await store.put_provider(p, overwrite=False) for p in DEMO_PROVIDERS]
        models = [await store.put_model(m, overwrite=False) for m in DEMO_MODELS]
        tiers = await store.put_tier(FREE_TIER, overwrite=False)
        users = await store.put_user(DEMO_USER, overwrite=False)
        demo_key = read_secret(settings.demo_key_file)
        if demo_key is None:
            demo_key = new_key()
            write_secret(settings.demo_key_file, demo_key)
        key = ApiKey(
            key_hash=hash_key(demo_key),
            prefix=key_prefix(demo_key),
            user_id=DEMO_USER.id,
            name="demo",
            created_at=datetime.now(UTC),
        )
        keys = await store.put_api_key(key, overwrite=False)
        await _seed_router(store)
    finally:
        await store.close()
    credited = await _credit_once(settings)
    admin_key(settings, create=True)
    return SeedReport(sum(providers), sum(models), int(tiers), int(users), int(keys), credited)


async def _seed_router(store: ConfigStore) -> None:
    """The router config and each profile, unless it was ever written (by the seed
    or an operator): a profile an operator deleted stays deleted."""
    documents = [("router_config", "default", RouterConfig().to_json())]
    documents += [("model_profile", p.model_id, p.to_json()) for p in DEMO_PROFILES]
    for entity, entity_id, document in documents:
        if not await store.history(entity=entity, entity_id=entity_id, limit=1):
            await store.change(entity, entity_id, document, actor="seed", reason="seeded")


async def _credit_once(settings: Settings) -> int:
    ledger = make_ledger(settings)
    await ledger.start()
    try:
        before = await ledger.balance(DEMO_USER.id) or 0
        await ledger.submit(
            LedgerEntry(
                request_id=DEMO_TOPUP_ID,
                user_id=DEMO_USER.id,
                kind="topup",
                amount_nano=DEMO_BALANCE_NANO,
                created_at=datetime.now(UTC).isoformat(),
                reason="demo opening balance",
            )
        )
        await ledger.drained()
        after = await ledger.balance(DEMO_USER.id) or 0
    finally:
        await ledger.close()
    return after - before
