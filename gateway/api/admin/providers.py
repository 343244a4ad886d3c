"""Admin routes for providers and pricing tiers.

    GET    /admin/providers                      list
    POST   /admin/providers                      create
    GET    /admin/providers/{id}
    PATCH  /admin/providers/{id}                 change fields (PUT is the same)
    DELETE /admin/providers/{id}                 only when no model uses it (else 409)
    POST   /admin/providers/{id}/enable, /disable
    PUT    /admin/providers/{id}/api-key         {"api_key": "..."}: stored encrypted
    DELETE /admin/providers/{id}/api-key
    GET    /admin/tiers, POST /admin/tiers, GET/PATCH/DELETE /admin/tiers/{id}

A provider's API key is never returned: a provider shows `api_key: "set"` or
`"not set"` and the key's last four characters. `rpm_used` and `tpm_used` say how
much of its RPM and TPM limits requests have taken on this instance (the limits
are token buckets: a minute's worth refills in a minute). Keys are stored encrypted
with GATEWAY_SECRET_KEY, which must be set to store one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.documents import (
    merged,
    provider_from_json,
    provider_to_json,
    tier_from_json,
    tier_to_json,
)
from config_store.router_config import ConfigInvalid
from config_store.schema import PricingTier, Provider
from gateway.api.admin.changes import (
    admin_services,
    apply_change,
    change_reason,
    invalid,
    json_body,
    not_found,
)
from gateway.api.endpoint import JSON
from gateway.errors import GatewayError, bad_request
from gateway.providers.vault import VaultError
from gateway.services import Services

PROVIDER, TIER = "provider", "tier"


def provider_view(services: Services, provider: Provider) -> dict[str, Any]:
    """A provider as the admin API shows it: never its key."""
    shown = provider_to_json(provider)
    stored = shown.pop("api_key")
    shown["api_key"] = "set" if stored else "not set"
    shown["api_key_last4"] = _last4(services, provider) if stored else None
    # What the provider's limits have taken in the last minute, on this instance.
    shown["rpm_used"] = services.limiter.used("provider", provider.id, "requests", provider.rpm)
    shown["tpm_used"] = services.limiter.used("provider", provider.id, "tokens", provider.tpm)
    return shown


def _last4(services: Services, provider: Provider) -> str | None:
    try:
        plain = services.vault.reveal(provider.api_key, provider.id)
    except GatewayError:
        return None  # encrypted with another secret key: set, but unreadable here
    return plain[-4:] if len(plain) >= 8 else None


def _sealed(services: Services, plain: Any) -> str:
    if not isinstance(plain, str) or not plain.strip():
        raise bad_request("'api_key' must be a non-empty string.", param="api_key")
    try:
        return services.vault.seal(plain.strip())
    except VaultError as exc:
        raise GatewayError(
            400,
            f"Cannot store a provider key: {exc}.",
            param="api_key",
            code="secret_key_not_set",
        ) from None


def _provider(services: Services, request: Request) -> Provider:
    provider_id = request.path_params["provider_id"]
    provider = services.cache.snapshot.providers.get(provider_id)
    if provider is None:
        raise not_found("provider", provider_id)
    return provider


async def _write_provider(
    services: Services, request: Request, provider: Provider, status: int = 200
) -> Response:
    entry = await apply_change(
        request, PROVIDER, provider.id, provider_to_json(provider), change_reason(request)
    )
    written = services.cache.snapshot.providers.get(provider.id, provider)
    return JSON(
        {"provider": provider_view(services, written), "history_id": entry.id},
        status_code=status,
    )


async def list_providers(request: Request) -> Response:
    services = admin_services(request)
    providers = sorted(services.cache.snapshot.providers.values(), key=lambda p: p.id)
    return JSON({"object": "list", "data": [provider_view(services, p) for p in providers]})


async def get_provider(request: Request) -> Response:
    services = admin_services(request)
    return JSON(provider_view(services, _provider(services, request)))


async def create_provider(request: Request) -> Response:
    services = admin_services(request)
    document = await json_body(request)
    provider_id = document.get("id")
    if isinstance(provider_id, str) and provider_id in services.cache.snapshot.providers:
        raise bad_request(
            f"A provider '{provider_id}' already exists.", param="id", code="duplicate"
        )
    plain = document.pop("api_key", None)
    try:
        provider = provider_from_json(document)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if plain is not None:
        provider = _with_key(provider, _sealed(services, plain))
    return await _write_provider(services, request, provider, status=201)


def _with_key(provider: Provider, stored: str) -> Provider:
    return _rebuilt(provider, api_key=stored)


def _rebuilt(provider: Provider, **changes: Any) -> Provider:
    """A stored provider with some fields changed, validated again: a row stored
    before a rule existed is refused by name, never written as it is."""
    try:
        return provider_from_json({**provider_to_json(provider), **changes})
    except ConfigInvalid as exc:
        raise invalid(exc) from None


async def update_provider(request: Request) -> Response:
    services = admin_services(request)
    current = _provider(services, request)
    patch = await json_body(request)
    plain = patch.pop("api_key", None)
    try:
        document = merged(provider_to_json(current), patch, "provider")
        provider = provider_from_json(document, id=current.id)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if plain is not None:
        provider = _with_key(provider, _sealed(services, plain))
    return await _write_provider(services, request, provider)


async def delete_provider(request: Request) -> Response:
    services = admin_services(request)
    provider = _provider(services, request)
    users = [
        m.model_id for m in services.cache.snapshot.models.values() if m.provider == provider.id
    ]
    if users:
        raise GatewayError(
            409,
            f"The provider '{provider.id}' serves {len(users)} models (e.g. '{users[0]}'); "
            "disable it, or move or delete its models first.",
            code="conflict",
        )
    entry = await apply_change(request, PROVIDER, provider.id, None, change_reason(request))
    return JSON({"deleted": provider.id, "history_id": entry.id})


async def enable_provider(request: Request) -> Response:
    return await _toggle(request, True)


async def disable_provider(request: Request) -> Response:
    return await _toggle(request, False)


async def _toggle(request: Request, enabled: bool) -> Response:
    services = admin_services(request)
    current = _provider(services, request)
    provider = _rebuilt(current, enabled=enabled)
    return await _write_provider(services, request, provider)


async def set_api_key(request: Request) -> Response:
    services = admin_services(request)
    current = _provider(services, request)
    body = await json_body(request)
    if set(body) != {"api_key"}:
        raise bad_request('The body is {"api_key": "..."}.', param="api_key")
    return await _write_provider(
        services, request, _with_key(current, _sealed(services, body["api_key"]))
    )


async def clear_api_key(request: Request) -> Response:
    services = admin_services(request)
    current = _provider(services, request)
    return await _write_provider(services, request, _with_key(current, ""))


def _tier(services: Services, request: Request) -> PricingTier:
    tier_id = request.path_params["tier_id"]
    tier = services.cache.snapshot.tiers.get(tier_id)
    if tier is None:
        raise not_found("tier", tier_id)
    return tier


async def list_tiers(request: Request) -> Response:
    services = admin_services(request)
    tiers = sorted(services.cache.snapshot.tiers.values(), key=lambda t: t.id)
    return JSON({"object": "list", "data": [tier_to_json(t) for t in tiers]})


async def get_tier(request: Request) -> Response:
    services = admin_services(request)
    return JSON(tier_to_json(_tier(services, request)))


async def create_tier(request: Request) -> Response:
    services = admin_services(request)
    document = await json_body(request)
    tier_id = document.get("id")
    if isinstance(tier_id, str) and tier_id in services.cache.snapshot.tiers:
        raise bad_request(f"A tier '{tier_id}' already exists.", param="id", code="duplicate")
    try:
        tier = tier_from_json(document)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    entry = await apply_change(request, TIER, tier.id, tier_to_json(tier), change_reason(request))
    return JSON({"tier": entry.new, "history_id": entry.id}, status_code=201)


async def update_tier(request: Request) -> Response:
    services = admin_services(request)
    current = _tier(services, request)
    try:
        document = merged(tier_to_json(current), await json_body(request), "tier")
        tier = tier_from_json(document, id=current.id)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    entry = await apply_change(request, TIER, tier.id, tier_to_json(tier), change_reason(request))
    return JSON({"tier": entry.new, "history_id": entry.id})


async def delete_tier(request: Request) -> Response:
    services = admin_services(request)
    tier = _tier(services, request)
    if any(u.tier_id == tier.id for u in services.cache.snapshot.users.values()):
        raise GatewayError(
            409, f"Users are on the tier '{tier.id}'; move them first.", code="conflict"
        )
    entry = await apply_change(request, TIER, tier.id, None, change_reason(request))
    return JSON({"deleted": tier.id, "history_id": entry.id})


routes = [
    Route("/admin/providers", list_providers, methods=["GET"]),
    Route("/admin/providers", create_provider, methods=["POST"]),
    Route("/admin/providers/{provider_id}/enable", enable_provider, methods=["POST"]),
    Route("/admin/providers/{provider_id}/disable", disable_provider, methods=["POST"]),
    Route("/admin/providers/{provider_id}/api-key", set_api_key, methods=["PUT"]),
    Route("/admin/providers/{provider_id}/api-key", clear_api_key, methods=["DELETE"]),
    Route("/admin/providers/{provider_id}", get_provider, methods=["GET"]),
    Route("/admin/providers/{provider_id}", update_provider, methods=["PATCH", "PUT"]),
    Route("/admin/providers/{provider_id}", delete_provider, methods=["DELETE"]),
    Route("/admin/tiers", list_tiers, methods=["GET"]),
    Route("/admin/tiers", create_tier, methods=["POST"]),
    Route("/admin/tiers/{tier_id}", get_tier, methods=["GET"]),
    Route("/admin/tiers/{tier_id}", update_tier, methods=["PATCH", "PUT"]),
    Route("/admin/tiers/{tier_id}", delete_tier, methods=["DELETE"]),
]
