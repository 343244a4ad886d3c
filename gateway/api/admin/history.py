"""The history of config changes, and rollback.

    GET  /admin/history?entity=&entity_id=&limit=&before=   newest first
    GET  /admin/history/{id}
    POST /admin/history/{id}/rollback    restore the entity as it was before
                                         that change; itself a recorded change

A rollback writes the change's `old` document back (or deletes the entity if
the change created it), after validating it as the entity it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.budgets import balance_alert_from_json, budget_from_json, team_from_json
from config_store.documents import model_from_json, provider_from_json, tier_from_json
from config_store.router_config import ConfigInvalid, ModelProfile, RouterConfig
from config_store.schema import EPOCH, HistoryEntry
from config_store.store import StoreError
from gateway.api.admin.changes import admin_services, apply_change, change_reason, invalid
from gateway.api.endpoint import JSON
from gateway.errors import GatewayError, bad_request, unavailable
from gateway.services import Services

# How each versioned entity's document is validated before it is written back.
VALIDATORS: dict[str, Callable[[str, Mapping[str, Any]], object]] = {
    "router_config": lambda _, document: RouterConfig.from_json(document),
    "model_profile": ModelProfile.from_json,
    "model": lambda _, document: model_from_json(
        document, id=str(document.get("id")), created_at=EPOCH
    ),
    "provider": lambda _, document: provider_from_json(document),
    "tier": lambda _, document: tier_from_json(document),
    "team": lambda _, document: team_from_json(document),
    "budget": lambda _, document: budget_from_json(document),
    "balance_alert": lambda _, document: balance_alert_from_json(document),
}


def shown(entry: HistoryEntry) -> dict[str, Any]:
    """An entry as the API shows it: a provider's key ciphertext never leaves."""
    document = entry.to_json()
    for side in ("old", "new"):
        value = document.get(side)
        if entry.entity == "provider" and isinstance(value, dict) and "api_key" in value:
            document[side] = {**value, "api_key": "set" if value["api_key"] else "not set"}
    return document


_MAX_ID_DIGITS = 18


def _int_param(request: Request, name: str, default: int | None, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise bad_request(f"'{name}' must be an integer from 1 to {high}.", param=name)
    return int(raw)


def _check_provider(services: Services, document: Mapping[str, Any]) -> None:
    if document.get("provider") not in services.cache.snapshot.providers:
        raise GatewayError(
            409,
            f"The model's provider '{document.get('provider')}' no longer exists.",
            code="conflict",
        )


async def list_history(request: Request) -> Response:
    services = admin_services(request)
    entity = request.query_params.get("entity") or None
    if entity is not None and entity not in VALIDATORS:
        raise bad_request(
            f"Unknown entity '{entity}'; one of {', '.join(sorted(VALIDATORS))}.", param="entity"
        )
    limit = _int_param(request, "limit", 100, 1000) or 100
    before = _int_param(request, "before", None, 2**62)
    try:
        entries = await services.cache.store.history(
            entity=entity,
            entity_id=request.query_params.get("entity_id") or None,
            limit=limit,
            before=before,
        )
    except StoreError as exc:
        raise unavailable(f"The history could not be read: {exc}", code="store_error") from exc
    return JSON({"data": [shown(entry) for entry in entries]})


async def _entry(services: Services, request: Request) -> HistoryEntry:
    raw = request.path_params["entry"]
    # An id is a SQLite integer: a longer number names no entry (and SQLite cannot take it).
    known = raw.isascii() and raw.isdigit() and len(raw) <= _MAX_ID_DIGITS
    try:
        entry = await services.cache.store.history_entry(int(raw)) if known else None
    except StoreError as exc:
        raise unavailable(f"The history could not be read: {exc}", code="store_error") from exc
    if entry is None:
        raise GatewayError(404, f"No history entry {raw}.", code="not_found")
    return entry


async def get_entry(request: Request) -> Response:
    services = admin_services(request)
    return JSON(shown(await _entry(services, request)))


async def rollback(request: Request) -> Response:
    services = admin_services(request)
    entry = await _entry(services, request)
    validate = VALIDATORS.get(entry.entity)
    if validate is None:
        raise bad_request(f"Changes to '{entry.entity}' cannot be rolled back.")
    if entry.old is not None:
        try:
            validate(entry.entity_id, entry.old)
        except ConfigInvalid as exc:
            raise invalid(exc) from None
        if entry.entity == "model":
            _check_provider(services, entry.old)
    reason = f"rollback of change {entry.id}"
    given = change_reason(request)
    restored = await apply_change(
        request,
        entry.entity,
        entry.entity_id,
        entry.old,
        f"{reason}: {given}" if given else reason,
    )
    return JSON({"rolled_back": entry.id, "change": shown(restored)})


routes = [
    Route("/admin/history", list_history, methods=["GET"]),
    Route("/admin/history/{entry}", get_entry, methods=["GET"]),
    Route("/admin/history/{entry}/rollback", rollback, methods=["POST"]),
]
