"""The CLI's budgets, teams and alerts, through a running gateway's admin API.

gateway teams                                   list teams and their wallets
gateway team-add ID [--member U]... [--wallet]   a team (its members; its wallet pays)
gateway team-topup ID AMOUNT_USD [--reason R] [--idempotency-key K]
gateway budgets                                 every budget with its window's state
gateway budget-add SCOPE SUBJECT WINDOW LIMIT_USD [--end-user E] [--alert P]... [--id ID]
gateway budget-remove ID
gateway alerts [--limit N]                       the alerts sent, newest first
"""

from __future__ import annotations

import argparse
from typing import Any

from config_store.budgets import SCOPES, WINDOWS
from gateway.ops.cli_admin import admin_call, connection, show
from gateway.settings import Settings

GROUPS = ("teams", "team-add", "team-topup", "budgets", "budget-add", "budget-remove", "alerts")


def add_commands(commands: Any) -> None:
    parsers = [commands.add_parser("teams", help="list teams and their wallets")]
    team = commands.add_parser("team-add", help="create a team")
    team.add_argument("id")
    team.add_argument("--name", default="")
    team.add_argument("--member", action="append", default=[], help="a user id (repeatable)")
    team.add_argument("--wallet", action="store_true", help="the team's balance pays")
    topup = commands.add_parser("team-topup", help="credit a team's wallet")
    topup.add_argument("id")
    topup.add_argument("amount_usd")
    topup.add_argument("--reason", default="")
    topup.add_argument("--idempotency-key", default="")
    parsers += [team, topup, commands.add_parser("budgets", help="list budgets")]
    budget = commands.add_parser("budget-add", help="create a budget")
    budget.add_argument("scope", choices=SCOPES)
    budget.add_argument("subject", help="a key's id, a user's, a team's")
    budget.add_argument("window", choices=WINDOWS)
    budget.add_argument("limit_usd")
    budget.add_argument("--end-user", default=None, help="end_user budgets: an id, or *")
    budget.add_argument("--alert", type=int, action="append", default=[], help="a percent")
    budget.add_argument("--id", dest="budget_id", default=None)
    remove = commands.add_parser("budget-remove", help="delete a budget")
    remove.add_argument("id")
    alerts = commands.add_parser("alerts", help="the alerts sent, newest first")
    alerts.add_argument("--limit", type=int, default=50)
    for parser in (*parsers, budget, remove, alerts):
        parser.add_argument("--url", help="the gateway's base URL")
        parser.add_argument("--admin-key", help="the admin key")


def run(args: argparse.Namespace, settings: Settings) -> int:
    url, key = connection(args, settings)
    command = args.command
    if command == "teams":
        show(admin_call(url, key, "GET", "/admin/teams"))
    elif command == "team-add":
        team = {"id": args.id, "name": args.name, "members": args.member, "wallet": args.wallet}
        show(admin_call(url, key, "POST", "/admin/teams", team))
    elif command == "team-topup":
        credit = {"amount_usd": args.amount_usd, "reason": args.reason,
                  "idempotency_key": args.idempotency_key}  # fmt: skip
        show(admin_call(url, key, "POST", f"/admin/teams/{args.id}/topup", credit))
    elif command == "budgets":
        show(admin_call(url, key, "GET", "/admin/budgets"))
    elif command == "budget-add":
        budget: dict[str, Any] = {"scope": args.scope, "subject": args.subject,
                                  "window": args.window, "limit_usd": args.limit_usd,
                                  "alert_percents": args.alert}  # fmt: skip
        if args.end_user is not None:
            budget["end_user"] = args.end_user
        if args.budget_id:
            budget["id"] = args.budget_id
        show(admin_call(url, key, "POST", "/admin/budgets", budget))
    elif command == "budget-remove":
        show(admin_call(url, key, "DELETE", f"/admin/budgets/{args.id}"))
    else:
        show(admin_call(url, key, "GET", f"/admin/alerts?limit={args.limit}"))
    return 0
