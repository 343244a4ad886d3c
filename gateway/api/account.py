"""GET /v1/account: what a user API key may see of its own account.

The balance and what open holds reserve of it, the spend since the start of
today and of this month (UTC), and the calling key's limits with what its
spend cap leaves. Counted against the key's requests per minute, like any
request; it reads the ledger, so it is not free.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.ledger_types import LedgerError
from billing.meter import UnknownAccount
from billing.pricing import usd
from config_store.schema import iso
from gateway.api.endpoint import JSON, services_of
from gateway.errors import unavailable
from gateway.proxy.auth import authenticate
from gateway.proxy.ratelimit import key_limits


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of `now`'s day and month, in UTC."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


async def account(request: Request) -> Response:
    services = services_of(request)
    await services.ensure_ledger()
    key, user = authenticate(request.headers, services.cache.snapshot)
    services.core.limiter.admit(key_limits(key, 0))
    day, month = period_starts(datetime.now(UTC))
    try:
        balance = await services.meter.balance(user.id)
        available = await services.meter.available(user.id)
        key_spent, key_held = await services.meter.key_spent(key.id)
        today, this_month = await services.reports.user_spend(
            user.id, [day.isoformat(), month.isoformat()]
        )
    except UnknownAccount:
        balance = available = 0
        key_spent, key_held, today, this_month = 0, 0, 0, 0
    except LedgerError as exc:
        raise unavailable(
            "The account cannot be read now; try again shortly.", code="ledger_unavailable"
        ) from exc
    cap = key.spend_cap_nano
    key_view: dict[str, Any] = {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "allowed_models": list(key.allowed_models),
        "spend_cap_usd": None if cap is None else usd(cap),
        "spent_usd": usd(key_spent),
        "held_usd": None if cap is None else usd(key_held),  # holds count against a cap
        "spend_left_usd": None if cap is None else usd(max(cap - key_spent - key_held, 0)),
    }
    return JSON(
        {
            "object": "account",
            "user": {"id": user.id, "name": user.name, "tier_id": user.tier_id},
            "balance_usd": usd(balance),
            "held_usd": usd(balance - available),
            "available_usd": usd(available),
            "spend": {
                "today_usd": usd(today),
                "this_month_usd": usd(this_month),
                "day_started_at": iso(day),
                "month_started_at": iso(month),
            },
            "key": key_view,
        }
    )


routes = [Route("/v1/account", account, methods=["GET"])]
