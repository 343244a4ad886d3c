"""Admin routes for teams (and their wallets), budgets and balance alerts.

    GET    /admin/teams                     teams with their wallets' balances
    POST   /admin/teams                     {id, name, members, wallet}
    GET    /admin/teams/{id}
    PATCH  /admin/teams/{id}                name, members, wallet
    DELETE /admin/teams/{id}                (its wallet's ledger rows stay)
    POST   /admin/teams/{id}/topup          {amount_usd, reason, idempotency_key?}
    POST   /admin/teams/{id}/adjust         {amount_usd (signed), reason, idempotency_key?}
    GET    /admin/budgets                   every budget with its window's state
    POST   /admin/budgets                   {id?, name, scope, subject, end_user?, window,
                                            limit_usd, alert_percents}
    GET    /admin/budgets/{id}
    PATCH  /admin/budgets/{id}              name, limit_usd, alert_percents
    DELETE /admin/budgets/{id}
    GET    /admin/balance-alerts
    POST   /admin/balance-alerts            {id?, account, below_usd}
    DELETE /admin/balance-alerts/{id}

Teams, budgets and balance alerts are versioned documents: every change is in
the history (`?reason=` names why) and can be rolled back. A user belongs to at
most one team. A budget's subject must exist: a key's id, a user's, a team's
(for end_user budgets, the key whose end users it limits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.ledger_types import LedgerEntry, LedgerError
from billing.pricing import usd
from billing.spending import Limit
from billing.subjects import end_user_subject
from config_store.budgets import (
    EVERY_END_USER,
    BalanceAlert,
    Budget,
    Team,
    balance_alert_from_json,
    balance_alert_to_json,
    budget_from_json,
    budget_to_json,
    team_from_json,
    team_to_json,
)
from config_store.router_config import ConfigInvalid
from config_store.snapshot import Snapshot
from gateway.api.account import budget_view
from gateway.api.admin.changes import (
    admin_services,
    apply_change,
    change_reason,
    invalid,
    json_body,
    not_found,
)
from gateway.api.admin.users import credit
from gateway.api.endpoint import JSON
from gateway.errors import bad_request, unavailable
from gateway.services import Services

TEAM, BUDGET, BALANCE_ALERT = "team", "budget", "balance_alert"


def _parsed(read: Callable[[Any], Any], document: Any) -> Any:
    try:
        return read(document)
    except ConfigInvalid as exc:
        raise invalid(exc) from None


def _merged(current: Mapping[str, Any], patch: Any, fixed: set[str]) -> dict[str, Any]:
    if not isinstance(patch, Mapping):
        raise bad_request("The body must be a JSON object.")
    for name in sorted(fixed & set(patch)):
        if patch[name] != current.get(name):
            raise bad_request(f"'{name}' cannot be changed; create another.", param=name)
    return {**current, **patch}


# -- teams ------------------------------------------------------------------------------------


def _team(snapshot: Snapshot, request: Request) -> Team:
    team = snapshot.teams.get(request.path_params["team_id"])
    if team is None:
        raise not_found("team", request.path_params["team_id"])
    return team


def _check_members(snapshot: Snapshot, team: Team) -> None:
    for member in team.members:
        if member not in snapshot.users:
            raise bad_request(f"No user '{member}'.", param="members", code="invalid_value")
        other = snapshot.team_of.get(member)
        if other is not None and other.id != team.id:
            raise bad_request(
                f"The user '{member}' is in the team '{other.id}' already; "
                "a user belongs to at most one team.",
                param="members",
                code="invalid_value",
            )


async def _team_view(services: Services, team: Team) -> dict[str, Any]:
    view = team_to_json(team)
    try:
        balance = await services.meter.balance(team.account)
        available = await services.meter.available(team.account)
    except LedgerError as exc:
        raise unavailable(
            f"The balance cannot be read now: {exc}", code="store_unavailable"
        ) from exc
    view.update(
        {
            "wallet_balance_usd": usd(balance),
            "wallet_held_usd": usd(balance - available),
            "budgets": [
                b.id for b in services.cache.snapshot.budgets_on.get(("team", team.id), ())
            ],
        }
    )
    return view


async def list_teams(request: Request) -> Response:
    services = admin_services(request)
    teams = sorted(services.cache.snapshot.teams.values(), key=lambda t: t.id)
    return JSON({"object": "list", "data": [await _team_view(services, t) for t in teams]})


async def create_team(request: Request) -> Response:
    services = admin_services(request)
    team: Team = _parsed(team_from_json, await json_body(request))
    snapshot = services.cache.snapshot
    if team.id in snapshot.teams:
        raise bad_request(f"A team '{team.id}' already exists.", param="id", code="duplicate")
    _check_members(snapshot, team)
    await apply_change(request, TEAM, team.id, team_to_json(team), change_reason(request))
    return JSON(await _team_view(services, team), status_code=201)


async def get_team(request: Request) -> Response:
    services = admin_services(request)
    return JSON(await _team_view(services, _team(services.cache.snapshot, request)))


async def update_team(request: Request) -> Response:
    services = admin_services(request)
    current = _team(services.cache.snapshot, request)
    document = _merged(team_to_json(current), await json_body(request), {"id"})
    team: Team = _parsed(team_from_json, document)
    _check_members(services.cache.snapshot, team)
    await apply_change(request, TEAM, team.id, team_to_json(team), change_reason(request))
    return JSON(await _team_view(services, team))


async def delete_team(request: Request) -> Response:
    services = admin_services(request)
    team = _team(services.cache.snapshot, request)
    entry = await apply_change(request, TEAM, team.id, None, change_reason(request))
    return JSON({"deleted": team.id, "history_id": entry.id})


async def team_topup(request: Request) -> Response:
    return await _team_credit(request, "topup")


async def team_adjust(request: Request) -> Response:
    return await _team_credit(request, "adjust")


async def _team_credit(request: Request, kind: str) -> Response:
    team = _team(admin_services(request).cache.snapshot, request)

    def entry(request_id: str, amount: int, reason: str) -> LedgerEntry:
        return LedgerEntry(
            request_id=request_id,
            user_id="",
            kind=kind,
            amount_nano=amount,
            created_at=datetime.now(UTC).isoformat(),
            reason=reason,
            team_id=team.id,
            paid_by="team",
        )

    return await credit(request, kind, team.account, entry)


# -- budgets ----------------------------------------------------------------------------------


def _budget(snapshot: Snapshot, request: Request) -> Budget:
    budget = snapshot.budgets.get(request.path_params["budget_id"])
    if budget is None:
        raise not_found("budget", request.path_params["budget_id"])
    return budget


def _check_subject(snapshot: Snapshot, budget: Budget) -> None:
    if budget.scope in ("key", "end_user"):
        known = any(k.id == budget.subject for k in snapshot.keys.values())
    elif budget.scope == "user":
        known = budget.subject in snapshot.users
    else:
        known = budget.subject in snapshot.teams
    if not known:
        what = "API key" if budget.scope in ("key", "end_user") else budget.scope
        raise bad_request(f"No {what} '{budget.subject}'.", param="subject", code="invalid_value")


async def _budget_view(services: Services, budget: Budget) -> dict[str, Any]:
    view = budget_to_json(budget)
    if budget.scope == "end_user" and budget.end_user == EVERY_END_USER:
        view["state"] = None  # each end user has a window of their own
        return view
    subject = (
        end_user_subject(budget.subject, budget.end_user)
        if budget.scope == "end_user"
        else budget.subject
    )
    limit = Limit(budget.id, budget.scope, subject, budget.window, budget.limit_nano)
    try:
        state = await budget_view(services.meter, limit)
    except LedgerError as exc:
        raise unavailable(
            f"The ledger cannot be read now: {exc}", code="store_unavailable"
        ) from exc
    view["state"] = {k: state[k] for k in ("spent_usd", "held_usd", "remaining_usd",
                                           "window_started_at", "resets_at")}  # fmt: skip
    return view


def _default_id(document: Any) -> Any:
    if isinstance(document, Mapping) and "id" not in document:
        parts = [document.get("scope"), document.get("subject"), document.get("window")]
        if all(isinstance(p, str) for p in parts):
            if document.get("scope") == "end_user" and isinstance(document.get("end_user"), str):
                end_user = document["end_user"]
                parts.insert(2, "each" if end_user == EVERY_END_USER else end_user)
            return {**document, "id": "-".join(str(p) for p in parts)[:100]}
    return document


async def list_budgets(request: Request) -> Response:
    services = admin_services(request)
    budgets = sorted(services.cache.snapshot.budgets.values(), key=lambda b: b.id)
    return JSON({"object": "list", "data": [await _budget_view(services, b) for b in budgets]})


async def create_budget(request: Request) -> Response:
    services = admin_services(request)
    budget: Budget = _parsed(budget_from_json, _default_id(await json_body(request)))
    snapshot = services.cache.snapshot
    if budget.id in snapshot.budgets:
        raise bad_request(f"A budget '{budget.id}' already exists.", param="id", code="duplicate")
    _check_subject(snapshot, budget)
    await apply_change(request, BUDGET, budget.id, budget_to_json(budget), change_reason(request))
    return JSON(await _budget_view(services, budget), status_code=201)


async def get_budget(request: Request) -> Response:
    services = admin_services(request)
    return JSON(await _budget_view(services, _budget(services.cache.snapshot, request)))


async def update_budget(request: Request) -> Response:
    services = admin_services(request)
    current = _budget(services.cache.snapshot, request)
    fixed = {"id", "scope", "subject", "end_user", "window"}
    document = _merged(budget_to_json(current), await json_body(request), fixed)
    budget: Budget = _parsed(budget_from_json, document)
    await apply_change(request, BUDGET, budget.id, budget_to_json(budget), change_reason(request))
    return JSON(await _budget_view(services, budget))


async def delete_budget(request: Request) -> Response:
    services = admin_services(request)
    budget = _budget(services.cache.snapshot, request)
    entry = await apply_change(request, BUDGET, budget.id, None, change_reason(request))
    return JSON({"deleted": budget.id, "history_id": entry.id})


# -- balance alerts ---------------------------------------------------------------------------


def _alerts(snapshot: Snapshot) -> list[BalanceAlert]:
    return sorted((a for group in snapshot.balance_alerts.values() for a in group),
                  key=lambda a: a.id)  # fmt: skip


async def list_balance_alerts(request: Request) -> Response:
    services = admin_services(request)
    data = [balance_alert_to_json(a) for a in _alerts(services.cache.snapshot)]
    return JSON({"object": "list", "data": data})


async def create_balance_alert(request: Request) -> Response:
    services = admin_services(request)
    document = await json_body(request)
    if isinstance(document, Mapping) and "id" not in document:
        document = {
            **document,
            "id": f"{str(document.get('account', ''))[:80]}-low".replace(":", "-"),
        }
    alert: BalanceAlert = _parsed(balance_alert_from_json, document)
    snapshot = services.cache.snapshot
    if any(a.id == alert.id for a in _alerts(snapshot)):
        raise bad_request(f"A balance alert '{alert.id}' exists.", param="id", code="duplicate")
    team = alert.account.removeprefix("team:")
    if alert.account not in snapshot.users and not (
        alert.account.startswith("team:") and team in snapshot.teams
    ):
        raise bad_request(f"No account '{alert.account}'.", param="account", code="invalid_value")
    doc = balance_alert_to_json(alert)
    await apply_change(request, BALANCE_ALERT, alert.id, doc, change_reason(request))
    return JSON(doc, status_code=201)


async def delete_balance_alert(request: Request) -> Response:
    services = admin_services(request)
    alert_id = request.path_params["alert_id"]
    if not any(a.id == alert_id for a in _alerts(services.cache.snapshot)):
        raise not_found("balance alert", alert_id)
    entry = await apply_change(request, BALANCE_ALERT, alert_id, None, change_reason(request))
    return JSON({"deleted": alert_id, "history_id": entry.id})


routes = [
    Route("/admin/teams", list_teams, methods=["GET"]),
    Route("/admin/teams", create_team, methods=["POST"]),
    Route("/admin/teams/{team_id}", get_team, methods=["GET"]),
    Route("/admin/teams/{team_id}", update_team, methods=["PATCH"]),
    Route("/admin/teams/{team_id}", delete_team, methods=["DELETE"]),
    Route("/admin/teams/{team_id}/topup", team_topup, methods=["POST"]),
    Route("/admin/teams/{team_id}/adjust", team_adjust, methods=["POST"]),
    Route("/admin/budgets", list_budgets, methods=["GET"]),
    Route("/admin/budgets", create_budget, methods=["POST"]),
    Route("/admin/budgets/{budget_id}", get_budget, methods=["GET"]),
    Route("/admin/budgets/{budget_id}", update_budget, methods=["PATCH"]),
    Route("/admin/budgets/{budget_id}", delete_budget, methods=["DELETE"]),
    Route("/admin/balance-alerts", list_balance_alerts, methods=["GET"]),
    Route("/admin/balance-alerts", create_balance_alert, methods=["POST"]),
    Route("/admin/balance-alerts/{alert_id}", delete_balance_alert, methods=["DELETE"]),
]
