"""Admin writes: ids are never empty and match their whole pattern; concurrent
writes are serialised, never refused; rows that no longer validate (written
before a rule existed, or by hand) are refused by name, and discovery skips
them and goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.tokens import TokenCounter
from config_store.schema import EPOCH, ModelConfig, Provider
from gateway.ops.discovery import plan_discovery
from gateway.providers.base import Listed
from tests.admin_client import Admin, error_of, fingerprint
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer

MODEL = {
    "provider": "mock",
    "input_price_per_million": "1",
    "output_price_per_million": "2",
    "context_window_size": 1000,
    "max_output_tokens": 100,
}


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    tiktoken_dir: Path,
    fake_openai_server: FakeOpenAI,
) -> Iterator[GatewayServer]:
    """One gateway for the tests whose requests are all refused."""
    env = {
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "OPENAI_API_KEY": fake_openai_server.api_key,
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
    }
    with GatewayServer(tmp_path_factory.mktemp("admin-inputs"), counter, env) as server:
        yield server


@pytest.mark.parametrize("bad", ["", "trailing\n", " lead", "a b", "x" * 300, "é"])
@pytest.mark.parametrize(
    ("path", "document", "param"),
    [
        ("/admin/providers", {"kind": "mock"}, "id"),
        ("/admin/users", {"name": "U"}, "id"),
        ("/admin/tiers", {"name": "T", "markup_percent": "1"}, "id"),
        ("/admin/models", MODEL, "model_id"),
        ("/admin/models", {**MODEL, "model_id": "fine", "provider": None}, "provider"),
    ],
)
def test_ids_are_never_empty_and_match_their_whole_pattern(
    shared: GatewayServer, bad: str, path: str, document: dict[str, Any], param: str
):
    admin = Admin(shared)
    before = fingerprint(shared)
    response = admin.post(path, {**document, param: bad})
    assert response.status_code == 400, response.text
    assert (error_of(response)["param"], error_of(response)["code"]) == (param, "invalid_value")
    assert fingerprint(shared) == before


@pytest.mark.parametrize(
    ("path", "document"),
    [
        ("/admin/providers", {"id": [], "kind": "mock"}),
        ("/admin/tiers", {"id": ["t"], "name": "T", "markup_percent": "1"}),
    ],
)
def test_an_id_that_is_not_a_string_is_400(shared: GatewayServer, path: str, document: Any):
    """Found by fuzzing: the duplicate check hashed the id and answered 500."""
    response = Admin(shared).post(path, document)
    assert response.status_code == 400, response.text
    assert (error_of(response)["param"], error_of(response)["code"]) == ("id", "invalid_value")


def test_optional_names_may_still_be_left_empty(gateway: GatewayServer):
    admin = Admin(gateway)
    document = {"id": "bare", "kind": "mock", "api_key_env": "", "base_url_env": ""}
    admin.ok(admin.post("/admin/providers", document), 201)
    admin.ok(admin.post("/admin/users/demo/topup", {"amount_usd": "1", "idempotency_key": ""}), 201)


def _legacy_rows(gw: GatewayServer) -> None:
    """Rows no admin request can write any more, as if written before the rules."""
    gw.execute(
        "INSERT INTO providers (id, kind, base_url, api_key_env, base_url_env, api_key, enabled,"
        " display_name) VALUES ('bad id', 'mock', '', '', '', '', 1, 'legacy')"
    )
    gw.execute(
        "INSERT INTO model_configurations (id, model_id, provider, input_price_per_million,"
        " output_price_per_million, context_window_size, max_output_tokens, is_active,"
        " created_at, upstream_model, tokenizer, note, mode, fallbacks)"
        " VALUES ('990', 'bad model', 'mock', '1', '1', 100, 10, 1, ?, '', 'o200k_base', '',"
        " 'chat', '[]')",
        EPOCH.isoformat(),
    )
    gw.refresh()


def test_a_stored_row_that_no_longer_validates_is_refused_by_name(gateway: GatewayServer):
    _legacy_rows(gateway)
    admin = Admin(gateway)
    response = admin.post("/admin/providers/bad%20id/disable")
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == "id"
    response = admin.delete("/admin/models/bad%20model")
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == "model_id"


def test_discovery_skips_bad_rows_records_them_and_finishes(gateway: GatewayServer, fake_openai):
    _legacy_rows(gateway)
    admin = Admin(gateway)
    fake_openai.listed = ["gpt-4o-mini-2024-07-18", "gpt-new one", "gpt-5-preview"]
    result = admin.ok(admin.post("/admin/sync"))
    runs = {r["provider"]: r for r in result["data"]}
    assert set(runs) == {"anthropic", "bad id", "google", "mock", "openai"}
    assert runs["bad id"]["status"] == "failed"
    assert "'id'" in runs["bad id"]["errors"][0]
    # The mock provider no longer lists 'bad model': its deprecation cannot be
    # written, so it is skipped and said; the three mock models are still seen.
    assert runs["mock"]["status"] == "partial"
    assert runs["mock"]["unchanged"] == 3
    assert ["bad model" in e for e in runs["mock"]["errors"]] == [True]
    # A listed name that no model id may have is skipped; the rest is written.
    assert runs["openai"]["status"] == "partial"
    assert runs["openai"]["new_models"] == ["gpt-5-preview"]
    assert any("gpt-new one" in e for e in runs["openai"]["errors"])
    assert admin.ok(admin.get("/admin/models/gpt-5-preview"))["needs_price"] is True
    health = httpx.get(f"{gateway.base_url}/health").json()["sync"]["providers"]
    assert health["mock"]["status"] == "partial" and health["mock"]["errors"]


class Exploding:
    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        raise RuntimeError("a bug in one lister")


def test_an_unexpected_failure_of_one_provider_does_not_end_the_run(
    make_gateway, fake_openai, monkeypatch: pytest.MonkeyPatch
):
    gw = make_gateway(env={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake_openai.base_url})
    monkeypatch.setitem(gw.services().providers, "anthropic", Exploding())
    admin = Admin(gw)
    runs = {r["provider"]: r for r in admin.ok(admin.post("/admin/sync"))["data"]}
    assert runs["anthropic"]["status"] == "failed"
    assert runs["anthropic"]["errors"] == ["unexpected error (RuntimeError)"]
    assert runs["openai"]["status"] == "ok" and runs["mock"]["status"] == "ok"


def test_listing_entries_of_the_wrong_type_are_skipped_and_said():
    provider = Provider(id="p", kind="openai")
    listed = [
        Listed("good", context_window=1000),
        Listed("words", context_window="a lot"),  # type: ignore[arg-type]
        Listed("flag", max_output=True),  # type: ignore[arg-type]
        Listed("negative", context_window=-5),
        Listed(5),  # type: ignore[arg-type]
    ]
    plan = plan_discovery(provider, listed, {}, datetime(2025, 1, 1, tzinfo=UTC))
    assert [m.model_id for m in plan.new] == ["good"]
    assert len(plan.skipped) == 4
    assert any("'words'" in s and "context window" in s for s in plan.skipped)


def test_a_stored_model_that_does_not_validate_is_not_planned():
    provider = Provider(id="p", kind="openai")
    bad = ModelConfig("1", "bad model", "p", Decimal(1), Decimal(1), 100, 10, created_at=EPOCH)
    plan = plan_discovery(provider, [], {bad.model_id: bad}, datetime(2025, 1, 1, tzinfo=UTC))
    assert plan.deprecated == [] and len(plan.skipped) == 1


def test_fifty_concurrent_admin_writes_all_succeed(gateway: GatewayServer):
    """Each write is a transaction on the store's one SQLite connection; they
    wait for each other rather than fail ("cannot start a transaction within
    a transaction" answered 503 before)."""
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=gateway.base_url, headers=headers, timeout=120, limits=limits
        ) as client:
            writes = [client.post("/admin/users", json={"id": f"u{i}"}) for i in range(50)]
            writes += [
                client.patch("/admin/models/mock-1", json={"note": f"note {i}"}) for i in range(10)
            ]
            writes += [client.post("/admin/cache/refresh") for _ in range(10)]
            tier = {"name": "T", "markup_percent": "1"}
            writes += [client.post("/admin/tiers", json={**tier, "id": f"t{i}"}) for i in range(5)]
            return list(await asyncio.gather(*writes))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 50 + [200] * 20 + [201] * 5, [
        r.text for r in responses if r.status_code >= 300
    ]
    users = gateway.query("SELECT count(*) FROM users WHERE id LIKE 'u%'")[0][0]
    assert users == 50
    assert gateway.query("SELECT count(*) FROM config_history WHERE entity = 'model'")[0][0] == 10


def test_a_history_id_too_long_for_sqlite_is_404(shared: GatewayServer):
    admin = Admin(shared)
    for response in (
        admin.get("/admin/history/99999999999999999999999"),
        admin.post("/admin/history/99999999999999999999999/rollback"),
    ):
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "not_found"
