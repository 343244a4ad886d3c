"""The snapshot: refresh on demand and on TTL, failures keep the last good one,
built-in defaults when the database cannot be opened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import httpx

from config_store.cache import ConfigCache
from config_store.defaults import BUILTIN_DEFAULTS
from config_store.schema import Catalogue
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, body_cost, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"


def ask(gw: GatewayServer) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": MINI, "messages": [{"role": "user", "content": "price check"}]},
    )


def admin(gw: GatewayServer, method: str, path: str) -> httpx.Response:
    return httpx.request(
        method, f"{gw.base_url}{path}", headers={"Authorization": f"Bearer {gw.admin_key}"}
    )


def test_stats_have_the_documented_fields(gateway: GatewayServer):
    ask(gateway)
    stats = admin(gateway, "GET", "/admin/cache/stats").json()
    assert stats["model_configs_count"] == 41
    assert stats["cache_ttl"] == "10m"
    assert stats["should_refresh"] is False
    assert stats["source"] == "sqlite"
    assert stats["last_refresh"].endswith("Z")
    assert (stats["hits"], stats["misses"]) == (1, 0)
    assert (stats["refresh_failures"], stats["last_error"]) == (0, None)


def test_price_change_in_sqlite_is_used_after_refresh_and_not_before(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    gateway.execute(
        "UPDATE model_configurations SET input_price_per_million = '3.00', "
        "output_price_per_million = '12.00' WHERE model_id = ?",
        MINI,
    )
    before = ask(gateway)
    usage = fake_openai.responses[-1]["usage"]
    old_cost = expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60"
    )
    assert body_cost(before.json()["usage"]) == f"{old_cost / 10**9:.9f}"
    refreshed = admin(gateway, "POST", "/admin/cache/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["refreshed"] is True
    after = ask(gateway)
    new_cost = expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "3.00", "12.00"
    )
    assert after.headers["x-gateway-cost-usd"] == f"0.{new_cost:09d}"
    assert gateway.balance() == 100 * 10**9 - old_cost - new_cost


def test_ttl_refresh_picks_up_changes_without_a_call(
    make_gateway: Callable[..., GatewayServer], fake_openai: FakeOpenAI
):
    gw = make_gateway(env={"GATEWAY_CACHE_TTL_SECONDS": "1"})
    gw.execute("UPDATE model_configurations SET is_active = 0 WHERE model_id = ?", MINI)
    assert ask(gw).status_code == 200
    deadline = time.monotonic() + 60  # bounds the wait only
    while ask(gw).status_code == 200:
        assert time.monotonic() < deadline, "the TTL refresh never happened"
        time.sleep(0.2)
    assert ask(gw).status_code == 404
    assert admin(gw, "GET", "/admin/cache/stats").json()["refreshes"] >= 2


def test_a_failed_refresh_keeps_the_last_good_snapshot(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    gateway.execute("ALTER TABLE model_configurations RENAME TO model_configurations_gone")
    response = admin(gateway, "POST", "/admin/cache/refresh")
    assert response.status_code == 503
    stats = response.json()
    assert stats["refreshed"] is False
    assert stats["source"] == "sqlite"
    assert stats["refresh_failures"] == 1
    assert "model_configurations" in stats["last_error"]
    assert stats["model_configs_count"] == 41
    assert ask(gateway).status_code == 200


def test_defaults_serve_when_the_database_is_unreadable(
    make_gateway: Callable[..., GatewayServer], tmp_path, fake_openai: FakeOpenAI
):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an sqlite database, just bytes" * 100)
    gw = make_gateway(do_seed=False, env={"GATEWAY_DB_PATH": str(broken)})
    stats = admin(gw, "GET", "/admin/cache/stats").json()
    assert stats["source"] == "defaults"
    assert stats["model_configs_count"] == 41
    assert "not a database" in stats["last_error"]
    models = httpx.get(f"{gw.base_url}/v1/models", params={"all": "true"}).json()
    assert len(models["data"]) == 41 + 4  # the built-in catalogue, and the auto presets
    health = httpx.get(f"{gw.base_url}/health")
    assert health.status_code == 503 and health.json()["store"]["source"] == "defaults"
    response = httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": "Bearer anything"},
        json={"model": MINI, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert fake_openai.calls == 0


class HeldStore:
    """A store whose loads wait until the test lets them through."""

    source = "sqlite"

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.loads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def open(self) -> None:
        return None

    async def migrate(self) -> list[int]:
        return []

    async def close(self) -> None:
        return None

    async def load(self) -> Catalogue:
        self.loads += 1
        seen = self.catalogue  # what the store holds when the read begins
        await self.gate.wait()
        return seen


async def test_a_change_seen_while_a_refresh_reads_the_store_gets_a_refresh_of_its_own():
    first = BUILTIN_DEFAULTS.models[0]
    store = HeldStore(BUILTIN_DEFAULTS)
    cache = ConfigCache(store, BUILTIN_DEFAULTS, ttl_seconds=600)  # type: ignore[arg-type]
    assert await cache.refresh()
    store.gate.clear()
    cache._changed()  # a listener saw a change: a refresh starts reading the store...
    while store.loads < 2:
        await asyncio.sleep(0.001)
    dearer = replace(first, input_price_per_million=Decimal("99"))
    store.catalogue = replace(BUILTIN_DEFAULTS, models=(dearer, *BUILTIN_DEFAULTS.models[1:]))
    cache._changed()  # ...and another change lands before that read returns
    store.gate.set()
    for _ in range(500):  # bounds the wait only
        if cache.snapshot.models[first.model_id].input_price_per_million == Decimal("99"):
            break
        await asyncio.sleep(0.01)
    assert cache.snapshot.models[first.model_id].input_price_per_million == Decimal("99")
    assert cache.listener_refreshes == 2
