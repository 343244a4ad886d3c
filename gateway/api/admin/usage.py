"""Admin routes over the ledger: usage, the rows themselves, and reconciliation.

GET /admin/usage?from=&to=&group_by=user,key,model,provider,day
GET /admin/ledger?user=&kind=&after=&limit=      pages in commit order
GET /admin/reconcile                             every balance against its ledger

(GET /admin/ledger/export, the ledger as CSV, is in ledger_export.py.)
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.ledger_types import LedgerError
from billing.pricing import usd
from billing.reports import GROUPS, BadCursor
from config_store.documents import parse_moment
from config_store.router_config import ConfigInvalid
from gateway.api.admin.changes import admin_services, invalid
from gateway.api.endpoint import JSON
from gateway.errors import bad_request, unavailable

_KINDS = ("charge", "topup", "adjust")


def moment(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_moment(raw, name).astimezone(UTC).isoformat()
    except ConfigInvalid as exc:
        raise invalid(exc) from None


async def usage(request: Request) -> Response:
    services = admin_services(request)
    raw = request.query_params.get("group_by", "user")
    group_by = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in group_by if name not in GROUPS]
    if unknown or len(set(group_by)) != len(group_by):
        raise bad_request(
            f"'group_by' takes names from {', '.join(GROUPS)}, each once.", param="group_by"
        )
    since, until = moment(request, "from"), moment(request, "to")
    try:
        rows = await services.reports.usage(group_by, since, until)
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc
    for row in rows:
        row["cost_usd"] = usd(row["cost_nano"])
        row["uncollected_usd"] = usd(row["uncollected_nano"])
    return JSON({"from": since, "to": until, "group_by": group_by, "data": rows})


def ledger_filters(request: Request) -> tuple[str | None, str | None]:
    """The `user` and `kind` a ledger listing is narrowed to."""
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in _KINDS:
        raise bad_request(f"'kind' is one of {', '.join(_KINDS)}.", param="kind")
    return request.query_params.get("user") or None, kind


async def ledger(request: Request) -> Response:
    services = admin_services(request)
    user_id, kind = ledger_filters(request)
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise bad_request("'limit' must be an integer from 1 to 1000.", param="limit")
    limit = int(raw_limit)
    try:
        page = await services.reports.page(
            user_id=user_id,
            kind=kind,
            after=request.query_params.get("after") or None,
            limit=limit,
        )
    except BadCursor:
        raise bad_request(
            "'after' takes the 'next' cursor of an earlier page.",
            param="after",
            code="invalid_cursor",
        ) from None
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc
    for row in page.rows:
        row["amount_usd"] = usd(row["amount_nano"])
    # `next` follows the last row even on a short page: rows committed later come
    # after it, so a client can keep reading from there.
    return JSON({"object": "list", "data": page.rows, "next": page.next})


async def reconcile(request: Request) -> Response:
    """Proof that balances are their ledgers: each user's stored balance equals
    the sum of its ledger rows, and the balance this process holds in memory
    equals the stored one once every submitted row is written. With several
    instances on Firestore the books are exact when no other instance is
    shipping rows at that moment (each ships within a flush interval)."""
    services = admin_services(request)
    await services.ensure_ledger()
    try:
        await services.ledger.drained()
        if services.view is not None:
            # Other instances' shipped charges: this instance's view catches up first.
            await services.view.resync()
        balances = await services.reports.balances()
        orphans = await services.reports.orphans()
        uncollected, anomalies = await services.reports.shortfall()
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc
    mismatches: list[dict[str, Any]] = []
    rows = 0
    for user_id, (stored, summed, count) in balances.items():
        rows += count
        in_memory = services.meter.cached_balance(user_id)
        if stored != summed or (in_memory is not None and in_memory != stored):
            mismatches.append(
                {
                    "user_id": user_id,
                    "balance_nano": stored,
                    "ledger_sum_nano": summed,
                    "in_memory_nano": in_memory,
                }
            )
    return JSON(
        {
            "clean": not mismatches and orphans == 0,
            "users": len(balances),
            "ledger_rows": rows,
            "orphan_rows": orphans,
            "mismatches": mismatches,
            "open_holds_nano": services.meter.open_holds(),
            # Not part of the books' balance: what providers' usage priced beyond the
            # holds (so never charged), to square with their invoices; and how many
            # usage reports were anomalies, billed from the gateway's own count.
            "uncollected_nano": uncollected,
            "uncollected_usd": usd(uncollected),
            "usage_anomalies": anomalies,
        }
    )


routes = [
    Route("/admin/usage", usage, methods=["GET"]),
    Route("/admin/ledger", ledger, methods=["GET"]),
    Route("/admin/reconcile", reconcile, methods=["GET"]),
]
