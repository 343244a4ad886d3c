"""POST /admin/prices/import?format=&dry_run=&effective_from=&skip_malformed=&reason=

The body is a price file (see config_store.price_import for the formats); the
answer is the report: rows read, matched, inserted, changed (old -> new),
unchanged, skipped with reasons, and pricing coverage. A dry run writes
nothing and answers the same report. A malformed file is refused with 400
naming its rows, and nothing is written.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.documents import parse_moment
from config_store.price_import import FORMATS, PriceFileError
from config_store.router_config import ConfigInvalid
from config_store.store import StoreError
from gateway.api.admin.changes import (
    actor_of,
    admin_services,
    change_reason,
    invalid,
    json_body,
    store_failure,
    writable_store,
)
from gateway.api.admin.models import flag
from gateway.api.endpoint import JSON
from gateway.errors import bad_request
from gateway.ops.price_update import plan, write


async def import_prices(request: Request) -> Response:
    services = admin_services(request)
    fmt = request.query_params.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise bad_request(f"'format' is one of {', '.join(FORMATS)}.", param="format")
    raw_from = request.query_params.get("effective_from")
    try:
        effective_from = parse_moment(raw_from, "effective_from") if raw_from else None
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    dry_run = flag(request, "dry_run") or False
    document = await json_body(request)
    snapshot = services.cache.snapshot
    try:
        report, updates = plan(
            document,
            snapshot.models,
            snapshot.providers,
            fmt=fmt,
            dry_run=dry_run,
            skip_malformed=flag(request, "skip_malformed") or False,
        )
    except PriceFileError as exc:
        first = exc.rows[0][0] if exc.rows else None
        raise bad_request(
            str(exc), param=f"row {first}" if first else "file", code="malformed_price_file"
        ) from None
    if not dry_run and updates:
        try:
            await write(
                writable_store(services),
                snapshot.models,
                updates,
                effective_from=effective_from,
                reason=change_reason(request) or "price import",
                actor=actor_of(request),
            )
        except StoreError as exc:
            raise store_failure(exc) from exc
        await services.cache.refresh()
    return JSON(report.to_json())


routes = [Route("/admin/prices/import", import_prices, methods=["POST"])]
