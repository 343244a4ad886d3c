"""GET /v1/account: what a user API key may see of its own account.

The balance and what open holds reserve of it, the spend since the start of
today and of this month (UTC), and the calling key's limits with what its
spend cap leaves, the user's team (and its wallet, if it pays), and every budget
on the key's path with what its window has left. Counted against the key's
requests per minute, like any request; it reads the ledger, so it is not free.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.ledger_types import LedgerError
from billing.meter import Meter, UnknownAccount
from billing.pricing import usd
from billing.spending import Limit
from config_store.budgets import Team
from config_store.schema import iso
from gateway.api.endpoint import JSON, services_of
from gateway.errors import unavailable
from gateway.proxy.auth import authenticate
from gateway.proxy.budgets import payer
from gateway.proxy.ratelimit import key_limits


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of `now`'s day and month, in UTC."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


async def account(request: Request) -> Response:
    services = services_of(request)
    await services.ensure_ledger()
    snapshot = services.cache.snapshot
    key, user = authenticate(request.headers, snapshot)
    services.core.limiter.admit(key_limits(key, 0))
    day, month = period_starts(datetime.now(UTC))
    pays = payer(snapshot, key, user, "")
    meter = services.meter
    try:
        balance = await meter.balance(user.id)
        available = await meter.available(user.id)
        key_spent, key_held, _ = await meter.budget_state(Limit("", "key", key.id, "lifetime", 0))
        today, this_month = await services.reports.user_spend(
            user.id, [day.isoformat(), month.isoformat()]
        )
        budgets = [await budget_view(meter, limit) for limit in pays.limits]
        team = await _team_view(services.meter, snapshot.team_of.get(user.id))
    except UnknownAccount:
        balance = available = 0
        key_spent, key_held, today, this_month = 0, 0, 0, 0
        budgets, team = [], None
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
            "team": team,
            "budgets": budgets,
        }
    )


async def budget_view(meter: Meter, limit: Limit) -> dict[str, Any]:
    """A budget now: its window's spend, its open holds and what is left."""
    spent, held, window = await meter.budget_state(limit)
    return {
        "id": limit.budget_id,
        "scope": limit.scope,
        "subject": limit.subject,
        "window": limit.window,
        "limit_usd": usd(limit.limit_nano),
        "spent_usd": usd(spent),
        "held_usd": usd(held),
        "remaining_usd": usd(max(limit.limit_nano - spent - held, 0)),
        "window_started_at": window.since or None,
        "resets_at": window.resets_at,
    }


async def _team_view(meter: Meter, team: Team | None) -> dict[str, Any] | None:
    if team is None:
        return None
    view: dict[str, Any] = {"id": team.id, "name": team.name, "wallet": team.wallet}
    if team.wallet:
        wallet = await meter.balance(team.account)
        view["wallet_balance_usd"] = usd(wallet)
        view["wallet_available_usd"] = usd(await meter.available(team.account))
    return view


routes = [Route("/v1/account", account, methods=["GET"])]
