"""Admin routes for models and their prices.

    GET    /admin/models?provider=&active=&mode=   list
    POST   /admin/models                           create (a whole document)
    GET    /admin/models/export                    every model, in the format bulk takes
    POST   /admin/models/bulk?dry_run=true         import: every row validated first,
                                                   then all written or none
    POST   /admin/models/reorder                   fallback priorities from an order
    GET    /admin/models/{model_id}
    PATCH  /admin/models/{model_id}                change fields (PUT is the same)
    DELETE /admin/models/{model_id}                deactivate (never deleted)
    GET    /admin/models/{model_id}/prices         the price history
    POST   /admin/models/{model_id}/prices         a new price, now or from a later time

A price never rewrites history: a change takes effect at a time (now by
default, or later), each request is billed at the price in force when it
started, and every price a model ever had stays listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.documents import (
    merged,
    model_from_json,
    model_to_json,
    price_from_json,
    provider_to_json,
)
from config_store.router_config import ConfigInvalid
from config_store.schema import ModelConfig, PricePoint
from config_store.snapshot import Snapshot
from config_store.store import StoreError
from gateway.api.admin.changes import (
    actor_of,
    admin_services,
    apply_change,
    apply_changes,
    change_reason,
    invalid,
    json_body,
    not_found,
    store_failure,
    writable_store,
)
from gateway.api.endpoint import JSON
from gateway.errors import GatewayError, bad_request
from gateway.services import Services

MODEL = "model"
# How far in the past a price's `effective_from` may lie (clock skew), no more.
_BACKDATE_TOLERANCE = timedelta(seconds=60)


def flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad_request(f"'{name}' must be true or false.", param=name)


def _model(services: Services, request: Request) -> ModelConfig:
    model_id = request.path_params["model_id"]
    model = services.cache.snapshot.models.get(model_id)
    if model is None:
        raise not_found("model", model_id)
    return model


def _check_references(snapshot: Snapshot, model: ModelConfig, param: str = "") -> None:
    """A model's provider and fallbacks must exist."""
    if model.provider not in snapshot.providers:
        raise bad_request(
            f"No provider '{model.provider}'.", param=f"{param}provider", code="invalid_value"
        )
    for name in model.fallbacks:
        if name not in snapshot.models:
            raise bad_request(
                f"No model '{name}' to fall back to.",
                param=f"{param}fallbacks",
                code="invalid_value",
            )


def _next_id(snapshot: Snapshot, taken: set[str]) -> str:
    numbers = [int(m.id) for m in snapshot.models.values() if m.id.isdigit()]
    numbers += [int(i) for i in taken if i.isdigit()]
    return str(max(numbers, default=0) + 1)


async def list_models(request: Request) -> Response:
    services = admin_services(request)
    provider = request.query_params.get("provider")
    mode = request.query_params.get("mode")
    active = flag(request, "active")
    models = [
        model_to_json(m)
        for m in sorted(services.cache.snapshot.models.values(), key=lambda m: m.model_id)
        if (provider is None or m.provider == provider)
        and (active is None or m.is_active == active)
        and (mode is None or m.mode == mode)
    ]
    return JSON({"object": "list", "data": models})


async def get_model(request: Request) -> Response:
    services = admin_services(request)
    return JSON(model_to_json(_model(services, request)))


async def create_model(request: Request) -> Response:
    services = admin_services(request)
    document = await json_body(request)
    snapshot = services.cache.snapshot
    model_id = document.get("model_id")
    if isinstance(model_id, str) and model_id in snapshot.models:
        raise bad_request(
            f"A model '{model_id}' already exists.", param="model_id", code="duplicate"
        )
    row_id = document.get("id") if isinstance(document.get("id"), str) else None
    if row_id is not None and any(m.id == row_id for m in snapshot.models.values()):
        raise bad_request(f"The id '{row_id}' is taken.", param="id", code="duplicate")
    try:
        model = model_from_json(
            document, id=row_id or _next_id(snapshot, set()), created_at=datetime.now(UTC)
        )
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    _check_references(snapshot, model)
    entry = await apply_change(
        request, MODEL, model.model_id, model_to_json(model), change_reason(request)
    )
    return JSON({"model": entry.new, "history_id": entry.id}, status_code=201)


async def update_model(request: Request) -> Response:
    services = admin_services(request)
    current = _model(services, request)
    patch = await json_body(request)
    try:
        document = merged(model_to_json(current), patch, "model")
        model = model_from_json(document, id=current.id, created_at=current.created_at)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if model.model_id != current.model_id:
        raise bad_request("'model_id' cannot be changed; create a new model.", param="model_id")
    _check_references(services.cache.snapshot, model)
    entry = await apply_change(
        request, MODEL, model.model_id, model_to_json(model), change_reason(request)
    )
    return JSON({"model": entry.new, "history_id": entry.id})


async def deactivate_model(request: Request) -> Response:
    services = admin_services(request)
    current = _model(services, request)
    document = {**model_to_json(current), "is_active": False}
    entry = await apply_change(request, MODEL, current.model_id, document, change_reason(request))
    return JSON({"model": entry.new, "history_id": entry.id})


async def export_models(request: Request) -> Response:
    services = admin_services(request)
    models = sorted(services.cache.snapshot.models.values(), key=lambda m: m.model_id)
    return JSON({"models": [model_to_json(m) for m in models]})


def _rows(body: Any) -> list[Any]:
    rows = body.get("models") if isinstance(body, Mapping) else None
    if not isinstance(rows, list):
        raise bad_request('The body must be {"models": [...]}.', param="models")
    if not rows:
        raise bad_request("'models' is empty.", param="models")
    return rows


def _plan(
    snapshot: Snapshot, rows: list[Any]
) -> tuple[list[ModelConfig], list[tuple[int, str, str]]]:
    """Every row validated: the models to write, and every row's error."""
    models: list[ModelConfig] = []
    errors: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    taken: set[str] = set()
    in_file = {str(r.get("model_id")) for r in rows if isinstance(r, Mapping)}
    now = datetime.now(UTC)
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise ConfigInvalid("A row must be a JSON object.", "")
            name = row.get("model_id")
            if not isinstance(name, str):
                raise ConfigInvalid("'model_id' is required.", "model_id")
            if name in seen:
                raise ConfigInvalid(f"'{name}' appears twice in the file.", "model_id")
            current = snapshot.models.get(name)
            if current is not None:
                document = merged(model_to_json(current), row, "model")
                model = model_from_json(document, id=current.id, created_at=current.created_at)
            else:
                row_id = row.get("id") if isinstance(row.get("id"), str) else None
                if row_id is not None and (
                    row_id in taken or any(m.id == row_id for m in snapshot.models.values())
                ):
                    raise ConfigInvalid(f"The id '{row_id}' is taken.", "id")
                row_id = row_id or _next_id(snapshot, taken)
                model = model_from_json(row, id=row_id, created_at=now)
            taken.add(model.id)
            seen.add(name)
            _check_known(snapshot, model, in_file)
            models.append(model)
        except ConfigInvalid as exc:
            errors.append((index, exc.param, str(exc)))
    return models, errors


def _check_known(snapshot: Snapshot, model: ModelConfig, in_file: set[str]) -> None:
    if model.provider not in snapshot.providers:
        raise ConfigInvalid(f"No provider '{model.provider}'.", "provider")
    for name in model.fallbacks:
        if name not in snapshot.models and name not in in_file:
            raise ConfigInvalid(f"No model '{name}' to fall back to.", "fallbacks")


async def bulk_import(request: Request) -> Response:
    """All rows are validated before anything is written; then all are written
    in one transaction, or none. `dry_run=true` reports the same and writes nothing."""
    services = admin_services(request)
    dry_run = flag(request, "dry_run") or False
    rows = _rows(await json_body(request))
    snapshot = services.cache.snapshot
    models, errors = _plan(snapshot, rows)
    if errors:
        index, param, _ = errors[0]
        listed = "; ".join(f"row {i + 1}: {m}" for i, _, m in errors[:10])
        raise GatewayError(
            400,
            f"{len(errors)} of {len(rows)} rows are invalid (rows count from 1); "
            f"nothing was written. {listed}",
            param=f"models[{index}].{param}" if param else f"models[{index}]",
            code="invalid_rows",
        )
    report: dict[str, Any] = {"dry_run": dry_run, "created": [], "updated": [], "unchanged": []}
    changes = []
    for model in models:
        new = model_to_json(model)
        current = snapshot.models.get(model.model_id)
        if current is None:
            report["created"].append(model.model_id)
        else:
            old = model_to_json(current)
            diff = {k: [old[k], new[k]] for k in new if old.get(k) != new[k]}
            if not diff:
                report["unchanged"].append(model.model_id)
                continue
            report["updated"].append({"model_id": model.model_id, "changes": diff})
        changes.append((MODEL, model.model_id, new))
    if not dry_run and changes:
        entries = await apply_changes(request, changes, change_reason(request) or "bulk import")
        report["history_ids"] = [entry.id for entry in entries]
    return JSON(report)


async def reorder(request: Request) -> Response:
    """{"models": [ids...]} and/or {"providers": [ids...]}: the first listed gets
    fallback priority 10, the next 20, ... (lower is tried first)."""
    services = admin_services(request)
    body = await json_body(request)
    unknown = sorted(set(body) - {"models", "providers"})
    if unknown or not body:
        raise bad_request(
            'The body is {"models": [...]} and/or {"providers": [...]}.',
            param=unknown[0] if unknown else None,
        )
    snapshot = services.cache.snapshot
    changes: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for field, entity, known in (
        ("models", MODEL, snapshot.models),
        ("providers", "provider", snapshot.providers),
    ):
        names = body.get(field, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad_request(f"'{field}' must be an array of ids.", param=field)
        if len(set(names)) != len(names):
            raise bad_request(f"'{field}' lists an id twice.", param=field)
        for position, name in enumerate(names):
            item = known.get(name)
            if item is None:
                raise bad_request(f"No {entity} '{name}'.", param=field)
            priority = (position + 1) * 10
            if isinstance(item, ModelConfig):
                document = {**model_to_json(item), "fallback_priority": priority}
            else:
                document = {**provider_to_json(item), "fallback_priority": priority}
            changes.append((entity, name, document))
    entries = await apply_changes(request, changes, change_reason(request) or "reorder")
    return JSON({"history_ids": [entry.id for entry in entries]})


async def list_prices(request: Request) -> Response:
    services = admin_services(request)
    model = _model(services, request)
    try:
        points = await services.cache.store.prices(model.model_id)
    except StoreError as exc:
        raise store_failure(exc) from exc
    if not points:  # never changed: the prices it was created with
        points = [_initial(model)]
    now = datetime.now(UTC)
    in_force = [p for p in points if p.effective_from <= now]
    data = [
        {**point.to_json(), "in_force": point is (in_force[-1] if in_force else None)}
        for point in points
    ]
    return JSON({"model_id": model.model_id, "data": data})


def _initial(model: ModelConfig) -> PricePoint:
    return PricePoint(
        model_id=model.model_id,
        effective_from=model.created_at,
        input_price_per_million=model.input_price_per_million,
        output_price_per_million=model.output_price_per_million,
        cached_input_price_per_million=model.cached_input_price_per_million,
        cache_write_price_per_million=model.cache_write_price_per_million,
        reason="created",
        recorded_at=model.created_at,
    )


async def add_price(request: Request) -> Response:
    """A new price for a model: in force now (the default) or from a later time;
    never from the past, so no request already billed is re-priced."""
    services = admin_services(request)
    model = _model(services, request)
    now = datetime.now(UTC)
    try:
        point = price_from_json(await json_body(request), model, now=now, actor=actor_of(request))
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if point.effective_from < now - _BACKDATE_TOLERANCE:
        raise bad_request(
            "'effective_from' is in the past: a price change never rewrites history.",
            param="effective_from",
            code="invalid_value",
        )
    reason = point.reason or change_reason(request)
    if point.effective_from <= now:
        document = point.applied_to(model)
        entry = await apply_change(request, MODEL, model.model_id, model_to_json(document), reason)
        return JSON({"price": point.to_json(), "history_id": entry.id}, status_code=201)
    try:
        await writable_store(services).add_price(point)
    except StoreError as exc:
        raise store_failure(exc) from exc
    await services.cache.refresh()
    return JSON({"price": point.to_json(), "history_id": None}, status_code=201)


routes = [
    Route("/admin/models", list_models, methods=["GET"]),
    Route("/admin/models", create_model, methods=["POST"]),
    Route("/admin/models/export", export_models, methods=["GET"]),
    Route("/admin/models/bulk", bulk_import, methods=["POST"]),
    Route("/admin/models/reorder", reorder, methods=["POST"]),
    Route("/admin/models/{model_id:path}/prices", list_prices, methods=["GET"]),
    Route("/admin/models/{model_id:path}/prices", add_price, methods=["POST"]),
    Route("/admin/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/admin/models/{model_id:path}", update_model, methods=["PATCH", "PUT"]),
    Route("/admin/models/{model_id:path}", deactivate_model, methods=["DELETE"]),
]
