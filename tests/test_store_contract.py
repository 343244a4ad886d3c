"""One contract, two stores: every test here runs against SQLite and against
Firestore (Google's emulator)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from config_store.cache import ConfigCache
from config_store.catalogue import DEMO_MODELS, DEMO_PROVIDERS, FREE_TIER
from config_store.documents import model_to_json, provider_to_json, tier_to_json
from config_store.firestore import FirestoreStore
from config_store.firestore_client import client
from config_store.profiles import DEMO_PROFILES
from config_store.router_config import RouterConfig
from config_store.schema import ApiKey, Catalogue, PricePoint, PricingTier, User
from config_store.snapshot import Snapshot
from config_store.sqlite import SqliteStore
from config_store.store import ConfigStore, NotFound
from tests.firestore_emulator import new_project

MINI = next(m for m in DEMO_MODELS if m.model_id == "gpt-4o-mini-2024-07-18")


@pytest.fixture(params=["sqlite", "firestore"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConfigStore]:
    made: ConfigStore
    if request.param == "sqlite":
        made = SqliteStore(tmp_path / "contract.db")
    else:
        made = FirestoreStore(new_project(), request.getfixturevalue("firestore_host"))
    await made.open()
    await made.migrate()
    yield made
    await made.close()


async def seeded(store: ConfigStore) -> None:
    for provider in DEMO_PROVIDERS:
        await store.put_provider(provider)
    for model in (*DEMO_MODELS[:5], MINI):
        await store.put_model(model)
    await store.put_tier(FREE_TIER)
    await store.put_user(User("u1", "User One", "free"))


async def test_an_empty_store_loads_an_empty_catalogue(store: ConfigStore):
    catalogue = await store.load()
    assert catalogue.models == () and catalogue.providers == () and catalogue.users == ()
    assert catalogue.router_config is None and catalogue.profiles == ()


async def test_entities_round_trip(store: ConfigStore):
    await seeded(store)
    key = ApiKey(
        key_hash="ab" * 32,
        prefix="gw-abc",
        user_id="u1",
        name="ci",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        rpm=5,
        tpm=1000,
        allowed_models=(MINI.model_id, "auto"),
        spend_cap_nano=12_345,
    )
    await store.put_api_key(key)
    catalogue = await store.load()
    assert sorted(catalogue.providers, key=lambda p: p.id) == sorted(
        DEMO_PROVIDERS, key=lambda p: p.id
    )
    by_id = {m.model_id: m for m in catalogue.models}
    for model in (*DEMO_MODELS[:5], MINI):
        assert by_id[model.model_id] == model
    assert catalogue.tiers == (FREE_TIER,)
    assert catalogue.users == (User("u1", "User One", "free"),)
    assert catalogue.api_keys == (key,)


async def test_put_without_overwrite_keeps_what_exists(store: ConfigStore):
    await seeded(store)
    changed = replace(MINI, note="changed")
    assert await store.put_model(changed, overwrite=False) is False
    assert await store.put_user(User("u1", "Renamed", "free"), overwrite=False) is False
    assert await store.put_tier(PricingTier("pro", "Pro", Decimal("2.5")), overwrite=False) is True
    catalogue = await store.load()
    assert {m.model_id: m for m in catalogue.models}[MINI.model_id].note == MINI.note
    assert catalogue.users[0].name == "User One"
    assert await store.put_model(changed) is True
    assert {m.model_id: m for m in (await store.load()).models}[MINI.model_id].note == "changed"


async def test_changes_are_recorded_and_can_be_listed(store: ConfigStore):
    await seeded(store)
    old = model_to_json(MINI)
    new = {**old, "note": "cheaper", "input_price_per_million": "0.10"}
    first = await store.change("model", MINI.model_id, new, actor="admin", reason="sale")
    assert (first.action, first.old, first.new, first.reason) == ("update", old, new, "sale")
    tier = tier_to_json(PricingTier("pro", "Pro", Decimal("5")))
    second = await store.change("tier", "pro", tier, actor="admin")
    third = await store.change("tier", "pro", None, actor="admin", reason="gone")
    assert first.id < second.id < third.id
    assert (second.action, third.action, third.old, third.new) == ("create", "delete", tier, None)

    everything = await store.history()
    assert [e.id for e in everything] == [third.id, second.id, first.id]
    assert [e.id for e in await store.history(entity="tier")] == [third.id, second.id]
    assert [e.id for e in await store.history(entity="model", entity_id=MINI.model_id)] == [
        first.id
    ]
    assert [e.id for e in await store.history(before=third.id, limit=1)] == [second.id]
    assert await store.history_entry(first.id) == first
    assert await store.history_entry(99_999) is None
    loaded = {m.model_id: m for m in (await store.load()).models}[MINI.model_id]
    assert (loaded.note, loaded.input_price_per_million) == ("cheaper", Decimal("0.10"))
    assert "pro" not in {t.id for t in (await store.load()).tiers}


async def test_concurrent_changes_all_succeed_and_are_numbered_once(store: ConfigStore):
    """Admin writes at the same moment are serialised, never refused for it."""
    await seeded(store)

    async def tier(n: int) -> int:
        document = tier_to_json(PricingTier(f"t{n}", f"Tier {n}", Decimal(n)))
        return (await store.change("tier", f"t{n}", document, actor="admin")).id

    ids = await asyncio.gather(*(tier(n) for n in range(24)))
    assert sorted(ids) == sorted(set(ids))
    assert {f"t{n}" for n in range(24)} <= {t.id for t in (await store.load()).tiers}
    assert len(await store.history(entity="tier", limit=100)) == 24


async def test_a_batch_of_changes_is_all_or_nothing(store: ConfigStore):
    await seeded(store)
    provider = provider_to_json(replace(DEMO_PROVIDERS[0], rpm=9))
    with pytest.raises(NotFound):
        await store.change_many(
            [("provider", DEMO_PROVIDERS[0].id, provider), ("tier", "never-was", None)],
            actor="admin",
        )
    assert {p.id: p for p in (await store.load()).providers}[DEMO_PROVIDERS[0].id].rpm == 0
    assert await store.history() == []


async def test_price_points_are_kept(store: ConfigStore):
    await seeded(store)
    doc = model_to_json(MINI)
    await store.change("model", MINI.model_id, {**doc, "note": "no price change"}, actor="a")
    assert await store.prices(MINI.model_id) == []
    await store.change(
        "model", MINI.model_id, {**doc, "input_price_per_million": "0.30"}, actor="a", reason="up"
    )
    points = await store.prices(MINI.model_id)
    assert [(p.input_price_per_million, p.reason) for p in points] == [
        (Decimal("0.15"), "created"),
        (Decimal("0.30"), "up"),
    ]
    assert points[0].effective_from == MINI.created_at
    later = PricePoint(
        model_id=MINI.model_id,
        effective_from=datetime.now(UTC) + timedelta(days=1),
        input_price_per_million=Decimal("0.0375"),
        output_price_per_million=Decimal("1.25"),
        actor="a",
        reason="scheduled",
        recorded_at=datetime.now(UTC),
    )
    await store.add_price(later)
    points = await store.prices(MINI.model_id)
    assert points[-1] == later
    catalogue = await store.load()
    assert later in catalogue.prices and len(catalogue.prices) == 3


async def test_router_config_and_profiles(store: ConfigStore):
    config = RouterConfig.from_json({"bonuses": {"stickiness": 30}, "chain_length": 2})
    await store.change("router_config", "default", config.to_json(), actor="admin")
    profile = DEMO_PROFILES[0]
    await store.change("model_profile", profile.model_id, profile.to_json(), actor="admin")
    catalogue = await store.load()
    assert catalogue.router_config == config
    assert catalogue.profiles == (profile,)
    entry = await store.change("model_profile", profile.model_id, None, actor="admin")
    assert entry.old == profile.to_json()
    assert (await store.load()).profiles == ()


async def test_deleting_what_does_not_exist_is_not_found(store: ConfigStore):
    with pytest.raises(NotFound):
        await store.change("model_profile", "nothing", None, actor="admin")
    with pytest.raises(NotFound):
        await store.change("model", "nothing", None, actor="admin")


def twin(store: ConfigStore, request: pytest.FixtureRequest) -> ConfigStore:
    """Another store on the same data: a second instance of the gateway."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    assert isinstance(store, FirestoreStore)
    return FirestoreStore(store.project, request.getfixturevalue("firestore_host"))


def edit_by_hand(store: ConfigStore, request: pytest.FixtureRequest, **fields: str) -> None:
    """A model document edited outside the gateway: SQL, or the Firestore console."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            for name, value in fields.items():
                db.execute(
                    f"UPDATE model_configurations SET {name} = ? WHERE model_id = ?",
                    (value, MINI.model_id),
                )
        return
    assert isinstance(store, FirestoreStore)
    db = client(store.project, request.getfixturevalue("firestore_host"), sync=True)
    try:
        db.collection("model_configurations").document(MINI.model_id).update(fields)
    finally:
        db.close()


async def test_an_edit_of_a_priced_model_by_hand_is_used_after_refresh(
    store: ConfigStore, request: pytest.FixtureRequest
):
    await seeded(store)
    document = model_to_json(MINI)
    await store.change("model", MINI.model_id, {**document, "input_price_per_million": "0.30"},
                       actor="admin")  # fmt: skip
    assert [p.applied for p in await store.prices(MINI.model_id)] == [True, True]
    cache = ConfigCache(store, Catalogue())
    assert await cache.refresh()
    assert cache.snapshot.models[MINI.model_id].input_price_per_million == Decimal("0.30")
    edit_by_hand(store, request, input_price_per_million="0.45")
    assert await cache.refresh()
    # The document holds the price in force; its price points are history.
    assert cache.snapshot.models[MINI.model_id].input_price_per_million == Decimal("0.45")


async def test_a_scheduled_price_is_written_into_its_model_once_when_due(
    store: ConfigStore, request: pytest.FixtureRequest
):
    await seeded(store)
    recorded = datetime.now(UTC)
    scheduled = PricePoint(
        model_id=MINI.model_id,
        effective_from=recorded + timedelta(hours=1),
        input_price_per_million=Decimal("0.0375"),
        output_price_per_million=Decimal("1.25"),
        cached_input_price_per_million=Decimal("0.01875"),
        actor="admin",
        reason="cheaper from 10:00",
        recorded_at=recorded,
    )
    await store.add_price(scheduled)
    assert scheduled.applied is False
    assert await store.apply_due_prices(recorded) == []  # not due yet
    before = Snapshot.of(await store.load(), "x", recorded)
    assert before.models[MINI.model_id].input_price_per_million == Decimal("0.15")
    assert before.priced(before.models[MINI.model_id], recorded + timedelta(hours=2)) == replace(
        MINI,
        input_price_per_million=Decimal("0.0375"),
        output_price_per_million=Decimal("1.25"),
        cached_input_price_per_million=Decimal("0.01875"),
    )
    assert before.unapplied == (scheduled,)

    # Two instances get there at once: one writes it, the other finds it written.
    other = twin(store, request)
    await other.open()
    try:
        later = recorded + timedelta(hours=2)
        results = await asyncio.gather(store.apply_due_prices(later), other.apply_due_prices(later))
    finally:
        await other.close()
    [entry] = results[0] + results[1]
    assert (entry.entity, entry.entity_id, entry.action, entry.actor) == (
        "model", MINI.model_id, "update", "schedule"
    )  # fmt: skip
    assert entry.reason == "cheaper from 10:00"
    assert entry.old is not None and entry.new is not None
    assert (entry.old["input_price_per_million"], entry.new["input_price_per_million"]) == (
        "0.15", "0.0375"
    )  # fmt: skip
    assert await store.apply_due_prices(later) == []
    assert [e.id for e in await store.history(entity="model")] == [entry.id]
    [point] = await store.prices(MINI.model_id)
    assert point.applied is True and point.effective_from == scheduled.effective_from
    after = Snapshot.of(await store.load(), "x", later)
    model = after.models[MINI.model_id]
    assert (model.input_price_per_million, model.output_price_per_million) == (
        Decimal("0.0375"), Decimal("1.25")
    )  # fmt: skip
    assert after.unapplied == () and dict(after.upcoming) == {}


@pytest.mark.parametrize("store", ["firestore"], indirect=True)
async def test_a_price_document_without_the_applied_field(
    store: ConfigStore, request: pytest.FixtureRequest
):
    """Written before the field existed: applied unless recorded ahead of its time.
    (Firestore only: SQLite's rows got the column, set the same way, in migration 8.)"""
    assert isinstance(store, FirestoreStore)
    await seeded(store)
    db = client(store.project, request.getfixturevalue("firestore_host"), sync=True)
    try:
        for effective, recorded in (("2030-01-01", "2025-01-01"), ("2025-01-01", "2025-01-01")):
            db.collection("model_prices").add(
                {
                    "model_id": MINI.model_id,
                    "effective_from": f"{effective}T00:00:00+00:00",
                    "input_price_per_million": "1",
                    "output_price_per_million": "2",
                    "recorded_at": f"{recorded}T00:00:00+00:00",
                }
            )
    finally:
        db.close()
    points = await store.prices(MINI.model_id)
    assert [(p.effective_from.year, p.applied) for p in points] == [(2025, True), (2030, False)]
