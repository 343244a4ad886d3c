"""A routing decision for `model: "auto"` (or a preset): classify, filter,
score, rank; the ranked candidates are the request's fallback chain.

Candidates are the active chat models with a profile that have every
capability the request needs, whose provider and model are not cooling down,
and that can take the request (provider enabled and reachable, context window
large enough: the same checks as a model asked for by name). The router
config and profiles come from the snapshot, or from the built-in ones when the
`GATEWAY_ROUTER_CONFIG=builtin` setting says so.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from config_store.profiles import DEMO_PROFILES
from config_store.router_config import CATEGORIES, COMPLEXITIES, ModelProfile, RouterConfig
from config_store.snapshot import Snapshot
from gateway.autoroute.classifier import Classification, classify
from gateway.autoroute.request import RouteRequest, read_request
from gateway.autoroute.scoring import Score, score
from gateway.autoroute.sticky import StickyRoutes
from gateway.errors import GatewayError, bad_request, model_not_found, unavailable
from gateway.proxy.chain import Candidate, CandidateFor
from gateway.proxy.fallback import Cooldowns

PRESETS = {
    "auto": "balanced",
    "auto:cheap": "cheap",
    "auto:balanced": "balanced",
    "auto:best": "best",
}
_BUILTIN_PROFILES: Mapping[str, ModelProfile] = {p.model_id: p for p in DEMO_PROFILES}
_BUILTIN_CONFIG = RouterConfig()

# Asks a model a chat question (model id, messages) and returns its text.
Ask = Callable[[str, list[dict[str, Any]]], Awaitable[str]]


def preset_of(model_name: str) -> str | None:
    """The preset a model name asks for, None for a real model's name."""
    if model_name != "auto" and not model_name.startswith("auto:"):
        return None
    preset = PRESETS.get(model_name)
    if preset is None:
        raise model_not_found(model_name)
    return preset


def router_sources(
    snapshot: Snapshot, source: str
) -> tuple[RouterConfig, Mapping[str, ModelProfile]]:
    if source == "builtin":
        return _BUILTIN_CONFIG, _BUILTIN_PROFILES
    return snapshot.router, snapshot.profiles


@dataclass(frozen=True, slots=True)
class Excluded:
    model_id: str
    reason: str
    cause: str  # "request" (it asks what the model cannot do), "cooldown", "unavailable"


@dataclass(slots=True)
class Decision:
    preset: str
    classification: Classification
    conversation: str
    sticky_model: str | None
    chain_length: int
    needs: frozenset[str] = frozenset()
    ranked: list[tuple[Score, Candidate]] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)

    @property
    def chain(self) -> list[Candidate]:
        return [candidate for _, candidate in self.ranked[: self.chain_length]]

    def to_json(self) -> dict[str, Any]:
        c = self.classification
        return {
            "preset": self.preset,
            "category": c.category,
            "complexity": c.complexity,
            "classified_by": c.by,
            "classifier_note": c.note or None,
            "signals": list(c.signals),
            "needs": sorted(self.needs),
            "conversation_id": self.conversation,
            "sticky_model": self.sticky_model,
            "candidates": [s.to_json() for s, _ in self.ranked],
            "excluded": [
                {"model": e.model_id, "reason": e.reason, "cause": e.cause} for e in self.excluded
            ],
            "chain": [candidate.model.model_id for candidate in self.chain],
        }


def rank(
    snapshot: Snapshot,
    request: RouteRequest,
    classification: Classification,
    config: RouterConfig,
    profiles: Mapping[str, ModelProfile],
    preset: str,
    *,
    conversation: str,
    sticky_model: str | None,
    candidate: CandidateFor,
    cooldowns: Cooldowns,
    allowed: frozenset[str] = frozenset(),
) -> Decision:
    """Every eligible model scored and ranked; the others listed with the reason.
    A key limited to some models (`allowed`) is routed among those only."""
    needs = request.needs
    decision = Decision(
        preset, classification, conversation, sticky_model, config.chain_length, needs
    )
    for model in snapshot.active_models:
        profile = profiles.get(model.model_id)
        if profile is None or model.mode != "chat":
            continue
        missing = sorted(needs - profile.capabilities)
        reason, cause = "", "request"
        if allowed and model.model_id not in allowed:
            reason = "not allowed for this API key"
        elif missing:
            reason = f"lacks {', '.join(missing)}"
        elif cooldowns.cooling(model.provider) or cooldowns.cooling(f"model:{model.model_id}"):
            reason, cause = "cooling down after failures", "cooldown"
        else:
            try:
                option = candidate(model)
            except GatewayError as exc:
                reason, cause = exc.message, "request" if exc.status < 500 else "unavailable"
        if reason:
            decision.excluded.append(Excluded(model.model_id, reason, cause))
            continue
        scored = score(
            model, profile, classification, config, preset, sticky=model.model_id == sticky_model
        )
        decision.ranked.append((scored, option))
    decision.ranked.sort(key=lambda pair: pair[0].rank_key())
    return decision


def no_route(decision: Decision) -> GatewayError:
    """Why no model could take the request: 503 when a model is cooling down (it
    may serve soon) or when every model is unreachable; else the request asks
    what no reachable model can do (a capability, a context window): 400."""
    needs = decision.needs
    wanted = f" (needs {', '.join(sorted(needs))})" if needs else ""
    reasons = "; ".join(f"{e.model_id}: {e.reason}" for e in decision.excluded[:5])
    message = f"No model can serve this auto-routed request{wanted}. {reasons}".strip()
    causes = {e.cause for e in decision.excluded}
    if "cooldown" in causes or "request" not in causes:
        return unavailable(message, code="no_route_available")
    return bad_request(message, param="model", code="no_route")


async def classify_request(
    request: RouteRequest, config: RouterConfig, ask: Ask | None
) -> Classification:
    """The local classifier's answer, or the classifier model's when the config
    names one and it answers usefully within its time budget."""
    local = classify(request, config)
    if not config.classifier_model or ask is None:
        return local
    try:
        answer = await asyncio.wait_for(
            ask(config.classifier_model, _classifier_messages(request)),
            timeout=config.classifier_timeout_ms / 1000,
        )
    except TimeoutError:
        return replace(local, note="the classifier model did not answer in time")
    except GatewayError as exc:
        return replace(local, note=f"the classifier model failed ({exc.code or exc.status})")
    parsed = parse_classifier_answer(answer)
    if parsed is None:
        return replace(local, note="the classifier model's answer was not usable")
    category, complexity = parsed
    return Classification(category, complexity, f"model:{config.classifier_model}", local.signals)


_INSTRUCTION = (
    "Classify the request below for routing. Categories: "
    + ", ".join(CATEGORIES)
    + ". Complexities: "
    + ", ".join(COMPLEXITIES)
    + '. Answer with JSON only: {"category": "...", "complexity": "..."}'
)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")


def _classifier_messages(request: RouteRequest) -> list[dict[str, Any]]:
    described = [f"System prompt: {request.system[:1000]}"] if request.system else []
    described.append(f"User message: {request.user[:2000]}")
    if request.images:
        described.append(f"Images attached: {request.images}")
    if request.tools:
        described.append(f"Tools offered: {', '.join(request.tools)}")
    return [
        {"role": "system", "content": _INSTRUCTION},
        {"role": "user", "content": "\n".join(described)},
    ]


def parse_classifier_answer(answer: str) -> tuple[str, str] | None:
    for found in _JSON_OBJECT.findall(answer):
        try:
            parsed = json.loads(found)
        except ValueError:
            continue
        if not isinstance(parsed, dict):
            continue
        category = str(parsed.get("category", "")).strip().lower()
        complexity = str(parsed.get("complexity", "")).strip().lower()
        if category in CATEGORIES and complexity in COMPLEXITIES:
            return category, complexity
    return None


async def decide(
    snapshot: Snapshot,
    source: str,
    body: Mapping[str, Any],
    messages: list[Any],
    *,
    preset: str,
    conversation_header: str | None,
    user_id: str,
    candidate: CandidateFor,
    sticky: StickyRoutes,
    cooldowns: Cooldowns,
    ask: Ask | None,
    allowed: frozenset[str] = frozenset(),
) -> Decision:
    """The routing decision for one request; its `ranked` list is empty when no
    model can take it (see `no_route`)."""
    config, profiles = router_sources(snapshot, source)
    request = read_request(body, messages)
    classification = await classify_request(request, config, ask)
    conversation = request.conversation_id(conversation_header)
    sticky.resize(config.sticky_conversations)
    decision = rank(
        snapshot,
        request,
        classification,
        config,
        profiles,
        preset,
        conversation=conversation,
        sticky_model=sticky.get(user_id, conversation),
        candidate=candidate,
        cooldowns=cooldowns,
        allowed=allowed,
    )
    return decision
