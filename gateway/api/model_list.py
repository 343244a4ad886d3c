"""GET /v1/models and GET /v1/models/{id}: what the gateway can serve now.

A model is listed when a request for it could be served now: active, priced,
its provider enabled, reachable (an adapter for its kind) and with credentials
(the mock provider needs none): the checks `gateway.proxy.chain` makes of a
model asked for by name. The `auto` presets follow when at least one listed
chat model is left for the router. `?all=true` lists every active model, each
saying whether it is servable and, if not, why. A valid key narrows the list to
its allowed models; the list needs no key (an unknown key is not refused here).

Written in OpenAI's shape, or in Anthropic's when the request carries
`anthropic-version` (what the anthropic SDK sends).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.schema import EPOCH, ModelConfig, Provider, iso
from config_store.snapshot import Snapshot
from gateway.api.endpoint import JSON, services_of
from gateway.autoroute.decision import PRESETS
from gateway.edge.tags import dialect_of
from gateway.errors import GatewayError, model_not_found
from gateway.proxy.auth import authenticate
from gateway.proxy.core import Core

# Why a model cannot be served now, as the listing names it.
NEEDS_PRICE = "needs_price"
PROVIDER_UNKNOWN = "provider_unknown"
PROVIDER_DISABLED = "provider_disabled"
PROVIDER_UNREACHABLE = "provider_unreachable"
PROVIDER_NOT_CONFIGURED = "provider_not_configured"
NO_SERVABLE_MODEL = "no_servable_model"  # a preset, when the router has nothing to route to


@dataclass(frozen=True, slots=True)
class Entry:
    """A model or a preset, and why it cannot be served now (None: it can)."""

    id: str
    owned_by: str
    model: ModelConfig | None  # None for a preset
    unavailable: str | None


def provider_problem(
    provider: Provider | None,
    adapters: Mapping[str, object],
    credentials: Callable[[Provider], tuple[str, str]],
) -> str | None:
    if provider is None:
        return PROVIDER_UNKNOWN
    if not provider.enabled:
        return PROVIDER_DISABLED
    if provider.kind not in adapters:
        return PROVIDER_UNREACHABLE
    if provider.kind == "mock":
        return None
    try:
        credentials(provider)
    except GatewayError:
        return PROVIDER_NOT_CONFIGURED
    return None


def entries(core: Core, snapshot: Snapshot, allowed: Iterable[str]) -> list[Entry]:
    """Every active model the key may use, then the presets."""
    wanted = frozenset(allowed)
    problems: dict[str, str | None] = {}  # by provider id: each is checked once
    listed: list[Entry] = []
    for model in snapshot.active_models:
        if wanted and model.model_id not in wanted:
            continue
        if model.provider not in problems:
            provider = snapshot.providers.get(model.provider)
            problems[model.provider] = provider_problem(provider, core.adapters, core.credentials)
        problem = NEEDS_PRICE if model.needs_price else problems[model.provider]
        listed.append(Entry(model.model_id, model.provider, model, problem))
    routable = any(e.unavailable is None and e.model and e.model.mode == "chat" for e in listed)
    presets = [
        Entry(name, "gateway", None, None if routable else NO_SERVABLE_MODEL) for name in PRESETS
    ]
    return listed + presets


def _allowed(request: Request, snapshot: Snapshot) -> tuple[str, ...]:
    """The models a valid key may use (all when it names none, or no valid key is sent)."""
    try:
        key, _ = authenticate(request.headers, snapshot)
    except GatewayError:
        return ()
    return key.allowed_models


def openai_item(entry: Entry, with_status: bool) -> dict[str, Any]:
    model = entry.model
    item: dict[str, Any] = {
        "id": entry.id,
        "object": "model",
        "created": int(model.created_at.timestamp()) if model else int(EPOCH.timestamp()),
        "owned_by": entry.owned_by,
    }
    if model is not None:
        item["context_window"] = model.context_window_size
    if with_status:
        item["servable"] = entry.unavailable is None
        item["unavailable_reason"] = entry.unavailable
    return item


def anthropic_item(entry: Entry, with_status: bool) -> dict[str, Any]:
    model = entry.model
    deprecated = model.deprecated_at if model else None
    item: dict[str, Any] = {
        "type": "model",
        "id": entry.id,
        "display_name": entry.id,
        "created_at": iso(model.created_at if model else EPOCH),
        "lifecycle": "deprecated" if deprecated else "active",
        "deprecated_at": iso(deprecated) if deprecated else None,
    }
    if model is not None:
        item["max_input_tokens"] = model.context_window_size
        item["max_tokens"] = model.max_output_tokens
    if with_status:
        item["servable"] = entry.unavailable is None
        item["unavailable_reason"] = entry.unavailable
    return item


async def list_models(request: Request) -> Response:
    services = services_of(request)
    snapshot = services.cache.snapshot
    everything = request.query_params.get("all", "").lower() == "true"
    found = entries(services.core, snapshot, _allowed(request, snapshot))
    shown = found if everything else [e for e in found if e.unavailable is None]
    if dialect_of(request.scope) == "anthropic":
        data = [anthropic_item(e, everything) for e in shown]
        return JSON(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    return JSON({"object": "list", "data": [openai_item(e, everything) for e in shown]})


async def retrieve_model(request: Request) -> Response:
    """Any active model the key may use, servable now or not (it says which)."""
    services = services_of(request)
    snapshot = services.cache.snapshot
    model_id: str = request.path_params["model_id"]
    found = entries(services.core, snapshot, _allowed(request, snapshot))
    entry = next((e for e in found if e.id == model_id), None)
    if entry is None:
        raise model_not_found(model_id)
    if dialect_of(request.scope) == "anthropic":
        return JSON(anthropic_item(entry, True))
    return JSON(openai_item(entry, True))


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    # Model ids may hold "/" or ":" (e.g. "auto:cheap"): the whole rest of the path.
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
