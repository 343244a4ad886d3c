"""GET /admin/ledger/export?user=&kind=&from=&to=: the ledger as CSV, in commit
order, streamed a page at a time (never the whole ledger in memory), with
amounts as exact integers of nano-USD and as decimal USD text.

A text cell that a spreadsheet would read as a formula (it begins with =, +, -,
@, a tab or a carriage return) is written with a leading apostrophe: a reason or
a user id is the operator's or a client's text, never a formula."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from billing.ledger_types import LedgerError
from billing.pricing import usd
from billing.reports import LedgerPage
from gateway.api.admin.changes import admin_services
from gateway.api.admin.usage import ledger_filters, moment
from gateway.errors import GatewayError, unavailable
from gateway.services import Services

log = logging.getLogger("gateway.admin")

COLUMNS = (
    "request_id", "created_at", "user_id", "kind", "model_id", "provider", "key_prefix",
    "prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens",
    "amount_nano", "amount_usd", "uncollected_nano", "usage_source", "reason",
)  # fmt: skip
_NUMBERS = frozenset(
    {"prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens",
     "amount_nano", "amount_usd", "uncollected_nano"}
)  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_PAGE = 1000


def cell(column: str, value: Any) -> str:
    text = "" if value is None else str(value)
    if column not in _NUMBERS and text.startswith(_FORMULA):
        return "'" + text
    return text


def csv_lines(rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    """Rows as CSV text (with the header line first when asked)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        amount = int(row.get("amount_nano") or 0)
        values = {**row, "amount_usd": usd(amount)}
        writer.writerow([cell(column, values.get(column)) for column in COLUMNS])
    return out.getvalue()


def _within(row: dict[str, Any], since: str | None, until: str | None) -> bool:
    created = str(row.get("created_at") or "")
    return (since is None or created >= since) and (until is None or created < until)


async def export(request: Request) -> Response:
    services = admin_services(request)
    user_id, kind = ledger_filters(request)
    since, until = moment(request, "from"), moment(request, "to")
    first = await _page(services, user_id, kind, None)  # a failure here is still a 503

    async def lines() -> AsyncIterator[str]:
        page: LedgerPage | None = first
        yield csv_lines([], header=True)
        while page is not None and page.rows:
            yield csv_lines((r for r in page.rows if _within(r, since, until)), header=False)
            if len(page.rows) < _PAGE:
                return
            try:
                page = await _page(services, user_id, kind, page.next)
            except GatewayError as exc:
                # The answer has begun: cutting it short is how the client learns it
                # is incomplete (the chunked body never ends properly).
                log.warning("ledger export cut short: %s", exc.message)
                raise

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="ledger-{stamp}.csv"',
            "cache-control": "no-store",
        },
    )


async def _page(
    services: Services, user_id: str | None, kind: str | None, after: str | None
) -> LedgerPage:
    try:
        return await services.reports.page(user_id=user_id, kind=kind, after=after, limit=_PAGE)
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc


routes = [Route("/admin/ledger/export", export, methods=["GET"])]
