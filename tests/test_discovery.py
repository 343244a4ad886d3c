"""Model discovery against fake provider listings (real local servers):
added, deprecated, unchanged, and a failing provider left untouched."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.ops.cli import main
from tests.admin_client import Admin
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def gw(
    make_gateway: Callable[..., GatewayServer], claude: FakeAnthropic, gemini: FakeGemini
) -> GatewayServer:
    claude.reset()
    gemini.reset()
    return make_gateway(
        env={
            "ANTHROPIC_BASE_URL": claude.base_url,
            "ANTHROPIC_API_KEY": claude.api_key,
            "GEMINI_BASE_URL": gemini.base_url,
            "GEMINI_API_KEY": gemini.api_key,
            "GATEWAY_SYNC_CRON": "0 3 1 1 *",  # scheduled, but not during the test
        }
    )


def by_provider(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["provider"]: r for r in result["data"]}


def models_of(gw: GatewayServer, provider: str) -> dict[str, dict[str, Any]]:
    admin = Admin(gw)
    listed = admin.ok(admin.get("/admin/models", provider=provider))["data"]
    return {m["model_id"]: m for m in listed}


def test_discovery_adds_deprecates_and_leaves_the_rest(
    gw: GatewayServer, fake_openai: FakeOpenAI, claude: FakeAnthropic, gemini: FakeGemini
):
    fake_openai.listed = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-5-preview"]
    claude.listed = ["claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-4-opus"]
    admin = Admin(gw)
    openai_before = models_of(gw, "openai")
    result = admin.ok(admin.post("/admin/sync"))
    runs = by_provider(result)
    assert {name: r["status"] for name, r in runs.items()} == {
        "anthropic": "ok",
        "google": "ok",
        "mock": "ok",
        "openai": "ok",
    }
    openai = runs["openai"]
    assert openai["new_models"] == ["gpt-5-preview"]
    assert (openai["discovered"], openai["unchanged"]) == (1, 2)
    deprecated = set(openai_before) - {"gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"}
    assert set(openai["deprecated_models"]) == deprecated
    assert runs["anthropic"]["new_models"] == ["claude-4-opus"]  # found on the second page
    assert runs["google"]["new_models"] == ["text-embedding-004"]
    assert (runs["mock"]["discovered"], runs["mock"]["deprecated"], runs["mock"]["unchanged"]) == (
        0,
        0,
        3,
    )

    new = admin.ok(admin.get("/admin/models/gpt-5-preview"))
    assert (new["is_active"], new["needs_price"], new["input_price_per_million"]) == (
        False,
        True,
        "0",
    )
    assert admin.ok(admin.get("/admin/models/text-embedding-004"))["mode"] == "embedding"
    assert admin.ok(admin.get("/admin/models/claude-4-opus"))["context_window_size"] == 8192
    gone = admin.ok(admin.get("/admin/models/gpt-4.1-2025-04-14"))
    assert gone["deprecated_at"] is not None and gone["is_active"] is True  # marked, not removed
    assert admin.ok(admin.get("/admin/models/gpt-4o-mini-2024-07-18"))["deprecated_at"] is None

    # A deprecated model listed again comes back; nothing else moves.
    fake_openai.listed.append("gpt-4.1-2025-04-14")
    again = by_provider(admin.ok(admin.post("/admin/sync")))["openai"]
    assert (again["discovered"], again["updated"], again["deprecated"]) == (0, 1, 0)
    assert admin.ok(admin.get("/admin/models/gpt-4.1-2025-04-14"))["deprecated_at"] is None

    health = httpx.get(f"{gw.base_url}/health").json()
    assert health["sync"]["providers"]["openai"]["status"] == "ok"
    assert health["sync"]["providers"]["openai"]["updated"] == 1
    assert health["sync"]["next_run"] is not None
    assert health["sync"]["providers"]["openai"]["next_run"] == health["sync"]["next_run"]


def test_a_failing_listing_changes_nothing_for_that_provider(
    gw: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gw)
    before = models_of(gw, "openai")
    fake_openai.listing_fails = 503
    runs = by_provider(admin.ok(admin.post("/admin/sync")))
    assert runs["openai"]["status"] == "failed"
    assert "503" in runs["openai"]["errors"][0] or "listing is down" in runs["openai"]["errors"][0]
    assert models_of(gw, "openai") == before
    assert runs["anthropic"]["status"] == "ok"
    status = admin.ok(admin.get("/admin/sync"))["providers"]["openai"]
    assert status["status"] == "failed" and status["errors"]
    metrics = httpx.get(f"{gw.base_url}/metrics").text
    assert 'gateway_sync_runs_total{outcome="failed",provider="openai"} 1.0' in metrics


def test_sync_and_price_import_on_the_command_line(
    gw: GatewayServer,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    fake_openai.listed = ["gpt-4o-mini-2024-07-18", "gpt-5-preview"]
    for name, value in gw.settings.env.items():
        monkeypatch.setenv(name, value)
    assert main(["sync", "--url", gw.base_url]) == 0
    captured = capsys.readouterr()
    assert "sync: 1/4 anthropic: ok" in captured.err  # plain lines: not a terminal
    assert "openai       ok      discovered 1" in captured.out
    assert Admin(gw).ok(Admin(gw).get("/admin/models/gpt-5-preview"))["needs_price"] is True

    prices = tmp_path / "litellm.json"
    prices.write_text(
        json.dumps(
            {
                "gpt-5-preview": {
                    "input_cost_per_token": "1.25e-6",
                    "output_cost_per_token": "1e-5",
                },
                "unknown-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
            }
        )
    )
    assert main(["prices", "import", str(prices), "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert "rows: 2/2" in dry.err
    assert "inserted 1, changed 0, unchanged 0, skipped 1" in dry.out
    assert "skipped row 2 unknown-model: not in catalogue" in dry.out
    assert main(["prices", "import", str(prices), "--url", gw.base_url]) == 0
    real = capsys.readouterr().out
    assert real.replace(" (dry run: nothing was written)", "") == real
    model = Admin(gw).ok(Admin(gw).get("/admin/models/gpt-5-preview"))
    assert (model["input_price_per_million"], model["output_price_per_million"]) == ("1.25", "10")
    assert model["needs_price"] is False
