"""Admin routes of the auto-router: its config, the model profiles, and a
simulation of a routing decision that calls no provider.

    GET    /admin/router/config              the stored config, the one in effect, and
                                             every knob's kind, range and default
    PUT    /admin/router/config              change knobs (a partial document)
    GET    /admin/router/profiles            every profile
    GET    /admin/router/profiles/{model}
    PUT    /admin/router/profiles/{model}    create (whole) or change (partial)
    DELETE /admin/router/profiles/{model}    the model is no longer auto-routed
    POST   /admin/router/simulate            a chat request in, the decision out; with
                                             `config` (a partial document), as that
                                             unsaved draft would decide

Every change is recorded in the history (see gateway.api.admin.history).
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.router_config import ConfigInvalid, ModelProfile, RouterConfig, knob_ranges
from config_store.schema import User
from config_store.snapshot import Snapshot
from gateway.api.admin.changes import (
    admin_services,
    apply_change,
    change_reason,
    invalid,
    json_body,
)
from gateway.api.endpoint import JSON
from gateway.autoroute.decision import preset_of, router_sources
from gateway.errors import GatewayError, bad_request, model_not_found
from gateway.proxy.admission import route_chat
from gateway.proxy.validation import validate_chat

ROUTER_CONFIG = "router_config"
MODEL_PROFILE = "model_profile"


async def get_config(request: Request) -> Response:
    services = admin_services(request)
    snapshot = services.cache.snapshot
    effective, _ = router_sources(snapshot, services.settings.router_source)
    return JSON(
        {
            "source": services.settings.router_source,
            "config": snapshot.router.to_json(),
            "effective": effective.to_json(),
            "knobs": knob_ranges(),
        }
    )


async def put_config(request: Request) -> Response:
    services = admin_services(request)
    patch = await json_body(request)
    try:
        config = RouterConfig.merged(services.cache.snapshot.router, patch)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if preset_of(config.classifier_model or "x") is not None:
        raise GatewayError(
            400,
            "The classifier model cannot be an auto-routed name.",
            param="classifier.model",
            code="invalid_value",
        )
    entry = await apply_change(
        request, ROUTER_CONFIG, "default", config.to_json(), change_reason(request)
    )
    return JSON({"config": entry.new, "history_id": entry.id})


async def list_profiles(request: Request) -> Response:
    services = admin_services(request)
    profiles = services.cache.snapshot.profiles
    return JSON({"data": [profiles[name].to_json() for name in sorted(profiles)]})


def _profile(request: Request) -> tuple[str, ModelProfile | None]:
    services = admin_services(request)
    model_id = request.path_params["model"]
    return model_id, services.cache.snapshot.profiles.get(model_id)


async def get_profile(request: Request) -> Response:
    model_id, profile = _profile(request)
    if profile is None:
        raise GatewayError(404, f"No router profile for '{model_id}'.", code="not_found")
    return JSON(profile.to_json())


async def put_profile(request: Request) -> Response:
    model_id, current = _profile(request)
    services = admin_services(request)
    model = services.cache.snapshot.models.get(model_id)
    if model is None:
        raise model_not_found(model_id)
    patch = await json_body(request)
    try:
        profile = (
            ModelProfile.from_json(model_id, patch) if current is None else current.merged(patch)
        )
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    entry = await apply_change(
        request, MODEL_PROFILE, model_id, profile.to_json(), change_reason(request)
    )
    return JSON({"profile": entry.new, "history_id": entry.id})


async def delete_profile(request: Request) -> Response:
    model_id, _ = _profile(request)
    admin_services(request)
    entry = await apply_change(request, MODEL_PROFILE, model_id, None, change_reason(request))
    return JSON({"deleted": model_id, "history_id": entry.id})


async def simulate(request: Request) -> Response:
    """The routing decision for a chat request, as `model: "auto"` would make it,
    with every candidate's score term by term. The local classifier decides (no
    provider is called); `?user=<id>` uses that user's tier and stickiness. A
    `config` field (a partial router config, validated as PUT validates it) is
    merged over the stored one for this decision only: nothing is stored."""
    services = admin_services(request)
    body = await json_body(request)
    draft = body.pop("config", None)
    model_name, messages, max_tokens, _ = validate_chat({"model": "auto", **body})
    preset = preset_of(model_name)
    if preset is None:
        raise GatewayError(
            400, "Simulate routes 'auto' or an 'auto:' preset.", param="model", code="invalid_value"
        )
    snapshot = services.cache.snapshot
    if draft is not None:
        try:
            snapshot = replace(snapshot, router=RouterConfig.merged(snapshot.router, draft))
        except ConfigInvalid as exc:
            raise bad_request(str(exc), param=f"config.{exc.param}", code="invalid_value") from None
    user = _simulated_user(request, snapshot)
    core = services.core
    if draft is not None:  # a draft's sticky_conversations must not resize the live memory
        core = replace(core, sticky=core.sticky.copy())
    decision = await route_chat(
        core, snapshot, request.headers, body, messages, user, preset, max_tokens, None
    )
    config, _ = router_sources(snapshot, services.settings.router_source)
    result = decision.to_json()
    result["draft"] = draft is not None
    if config.classifier_model:
        result["classifier_note"] = (
            f"the config names '{config.classifier_model}' as classifier model; "
            "simulate calls no provider, so the local classifier decided"
        )
    return JSON(result)


def _simulated_user(request: Request, snapshot: Snapshot) -> User:
    wanted = request.query_params.get("user")
    if wanted:
        user = snapshot.users.get(wanted)
        if user is None:
            raise GatewayError(404, f"No user '{wanted}'.", param="user", code="not_found")
        return user
    return User(id="", name="simulation", tier_id=next(iter(snapshot.tiers), ""))


routes = [
    Route("/admin/router/config", get_config, methods=["GET"]),
    Route("/admin/router/config", put_config, methods=["PUT"]),
    Route("/admin/router/profiles", list_profiles, methods=["GET"]),
    Route("/admin/router/profiles/{model:path}", get_profile, methods=["GET"]),
    Route("/admin/router/profiles/{model:path}", put_profile, methods=["PUT"]),
    Route("/admin/router/profiles/{model:path}", delete_profile, methods=["DELETE"]),
    Route("/admin/router/simulate", simulate, methods=["POST"]),
]
