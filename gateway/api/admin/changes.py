"""What every admin route (Authorization: Bearer <admin key>, or the console's
signed-in session) shares:
authentication, JSON bodies, and versioned changes (written with their history,
then the snapshot refreshed at once, so the next request sees them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request

from config_store.router_config import ConfigInvalid
from config_store.schema import HistoryEntry
from config_store.store import ConfigStore, Conflict, Invalid, NotFound, StoreError
from gateway.api.endpoint import services_of
from gateway.console.access import console_admin
from gateway.errors import GatewayError, bad_request, invalid_api_key, unavailable
from gateway.proxy.auth import admin_name
from gateway.proxy.validation import parse_body
from gateway.services import Services

# The name of the main admin key (GATEWAY_ADMIN_KEY or the key file); others
# are named in GATEWAY_ADMIN_KEYS. A change's history names the key that made it.
ADMIN_ACTOR = "admin"


def admin_services(request: Request) -> Services:
    services = services_of(request)
    name = admin_name(request.headers, services.admin_keys)
    if name is None and "authorization" not in request.headers:
        # The console's pages: a signed-in session (and, for a write, its CSRF token).
        name = console_admin(request, services.admin_keys, services.signed_out, request.method)
    if name is None:
        raise invalid_api_key("Admin endpoints need 'Authorization: Bearer <admin key>'.")
    request.state.actor = name
    return services


def actor_of(request: Request) -> str:
    """The name of the admin key this request came with."""
    return str(getattr(request.state, "actor", ADMIN_ACTOR))


async def json_body(request: Request) -> dict[str, Any]:
    return parse_body(await request.body())


def invalid(exc: ConfigInvalid) -> GatewayError:
    return bad_request(str(exc), param=exc.param, code="invalid_value")


def change_reason(request: Request) -> str:
    """Why a change is made: the `reason` query parameter or `x-change-reason` header."""
    return (request.query_params.get("reason") or request.headers.get("x-change-reason") or "")[
        :500
    ]


async def apply_change(
    request: Request,
    entity: str,
    entity_id: str,
    document: Mapping[str, Any] | None,
    reason: str,
) -> HistoryEntry:
    """Write one versioned entity with its history entry, then refresh the snapshot."""
    [entry] = await apply_changes(request, [(entity, entity_id, document)], reason)
    return entry


async def apply_changes(
    request: Request,
    changes: Sequence[tuple[str, str, Mapping[str, Any] | None]],
    reason: str,
) -> list[HistoryEntry]:
    """Several versioned changes, all or nothing, by the request's admin key,
    then the snapshot refreshed."""
    services = services_of(request)
    store = writable_store(services)
    try:
        entries = await store.change_many(changes, actor=actor_of(request), reason=reason)
    except StoreError as exc:
        raise store_failure(exc) from exc
    await services.cache.refresh()
    return entries


def writable_store(services: Services) -> ConfigStore:
    if not services.cache.store_ok:
        raise unavailable(
            "The configuration store is unavailable; changes cannot be saved.",
            code="store_unavailable",
        )
    return services.cache.store


def store_failure(exc: StoreError) -> GatewayError:
    """A store error as the admin's answer: 400, 404, 409, or 503."""
    if isinstance(exc, Invalid):
        return bad_request(
            f"The change could not be saved: {exc}", param=exc.param, code="invalid_value"
        )
    if isinstance(exc, NotFound):
        return GatewayError(404, str(exc), code="not_found")
    if isinstance(exc, Conflict):
        return GatewayError(409, f"The change conflicts with existing data: {exc}", code="conflict")
    return unavailable(f"The change could not be saved: {exc}", code="store_error")


def not_found(what: str, name: str) -> GatewayError:
    return GatewayError(404, f"No {what} '{name}'.", code="not_found")
