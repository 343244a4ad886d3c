"""`build_chain` over a Snapshot built in memory and a stand-in for the function
that makes a candidate: which fallbacks make the chain, and in what order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from config_store.schema import ModelConfig, Provider
from config_store.snapshot import Snapshot
from gateway.errors import GatewayError, bad_request, unavailable
from gateway.proxy.chain import build_chain

PROVIDERS = {
    "first": Provider("first", "openai", fallback_priority=10),
    "middle": Provider("middle", "anthropic"),  # 100, the default
    "last": Provider("last", "gemini", fallback_priority=500),
}


def model(model_id: str, provider: str = "middle", **fields: Any) -> ModelConfig:
    return ModelConfig(
        model_id, model_id, provider, Decimal("1"), Decimal("2"), 100_000, 4096,
        **fields,
    )  # fmt: skip


def snapshot(*models: ModelConfig) -> Snapshot:
    return Snapshot(
        providers=PROVIDERS,
        models={m.model_id: m for m in models},
        tiers={},
        users={},
        keys={},
        source="unit",
        loaded_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


@dataclass(frozen=True)
class Made:
    """What build_chain reads of a Candidate: its model and its provider."""

    model: ModelConfig
    provider: Provider


class Maker:
    """Makes candidates and records for which models; refuses those in `refused`."""

    def __init__(self, snap: Snapshot, refused: dict[str, GatewayError] | None = None) -> None:
        self.snap = snap
        self.refused = refused or {}
        self.asked: list[str] = []

    def __call__(self, m: ModelConfig) -> Any:
        self.asked.append(m.model_id)
        if m.model_id in self.refused:
            raise self.refused[m.model_id]
        return Made(m, self.snap.providers[m.provider])


def chain_of(snap: Snapshot, requested: str, maker: Maker | None = None) -> list[str]:
    made = build_chain(snap, snap.models[requested], maker or Maker(snap))
    return [c.model.model_id for c in made]


def test_a_model_without_fallbacks_is_its_own_chain():
    snap = snapshot(model("main"))
    maker = Maker(snap)
    assert chain_of(snap, "main", maker) == ["main"] and maker.asked == ["main"]


def test_the_requested_models_problem_is_the_requests_error():
    snap = snapshot(model("main", fallbacks=("spare",)), model("spare"))
    too_long = bad_request("too long", code="context_length_exceeded")
    with pytest.raises(GatewayError) as caught:
        chain_of(snap, "main", Maker(snap, {"main": too_long}))
    assert caught.value is too_long


def test_fallbacks_follow_their_list_when_priorities_tie():
    snap = snapshot(model("main", fallbacks=("c", "a", "b")), model("a"), model("b"), model("c"))
    assert chain_of(snap, "main") == ["main", "c", "a", "b"]


def test_the_providers_priority_comes_first_then_the_models_then_the_position():
    snap = snapshot(
        model("main", "last", fallbacks=("late", "cheap", "early", "preferred", "plain")),
        model("late", "last", fallback_priority=1),
        model("cheap", "middle", fallback_priority=50),
        model("early", "first", fallback_priority=900),
        model("preferred", "first", fallback_priority=5),
        model("plain", "middle"),
    )
    assert chain_of(snap, "main") == ["main", "preferred", "early", "cheap", "plain", "late"]


def test_the_requested_model_stays_first_whatever_its_priority():
    snap = snapshot(
        model("main", "last", fallback_priority=1000, fallbacks=("spare",)),
        model("spare", "first", fallback_priority=0),
    )
    assert chain_of(snap, "main") == ["main", "spare"]


def test_unknown_inactive_self_and_other_mode_fallbacks_are_left_out_unasked():
    snap = snapshot(
        model("main", fallbacks=("ghost", "off", "main", "embedder", "legacy", "ok")),
        model("off", is_active=False),
        model("embedder", mode="embedding"),
        model("legacy", mode="completion"),
        model("ok"),
    )
    maker = Maker(snap)
    assert chain_of(snap, "main", maker) == ["main", "ok"]
    assert maker.asked == ["main", "ok"]


def test_a_fallback_that_cannot_serve_the_request_is_left_out():
    snap = snapshot(
        model("main", fallbacks=("no-key", "small", "ok")), model("no-key"), model("small"),
        model("ok"),
    )  # fmt: skip
    refused = {
        "no-key": unavailable("no key", code="provider_not_configured"),
        "small": bad_request("too long", code="context_length_exceeded"),
    }
    maker = Maker(snap, refused)
    assert chain_of(snap, "main", maker) == ["main", "ok"]
    assert maker.asked == ["main", "no-key", "small", "ok"]


def test_a_failure_that_is_not_a_gateway_error_is_not_swallowed():
    snap = snapshot(model("main", fallbacks=("broken",)), model("broken"))

    def maker(m: ModelConfig) -> Any:
        if m.model_id == "broken":
            raise RuntimeError("bug")
        return Made(m, PROVIDERS[m.provider])

    with pytest.raises(RuntimeError):
        build_chain(snap, snap.models["main"], maker)


def test_an_embedding_model_falls_back_to_embedding_models_only():
    snap = snapshot(
        model("embed", mode="embedding", fallbacks=("chat", "embed-2")),
        model("chat"),
        model("embed-2", mode="embedding"),
    )
    assert chain_of(snap, "embed") == ["embed", "embed-2"]
