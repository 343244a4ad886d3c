"""The CLI's read-only views of a running gateway: tiers, usage, the ledger
and the history of changes (through its admin API, as JSON).

    gateway tiers
    gateway usage [--group-by user,model,...] [--from T] [--to T]
    gateway ledger [--user ID] [--kind charge|topup|adjust] [--limit N] [--after CURSOR]
    gateway history [--entity E] [--id ID] [--limit N]
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlencode

from gateway.ops.cli_admin import admin_call, connection, show
from gateway.settings import Settings

GROUPS = ("tiers", "usage", "ledger", "history")


def add_commands(commands: Any) -> None:
    tiers = commands.add_parser("tiers", help="list the pricing tiers")
    usage = commands.add_parser("usage", help="spend and tokens, grouped")
    usage.add_argument("--group-by", default="user", help="user, key, model, provider, day")
    usage.add_argument("--from", dest="since", default=None, help="an ISO time")
    usage.add_argument("--to", dest="until", default=None, help="an ISO time")
    ledger = commands.add_parser("ledger", help="ledger rows, a page at a time")
    ledger.add_argument("--user", default=None)
    ledger.add_argument("--kind", default=None, choices=("charge", "topup", "adjust"))
    ledger.add_argument("--limit", type=int, default=100)
    ledger.add_argument("--after", default=None, help="the 'next' cursor of an earlier page")
    history = commands.add_parser("history", help="configuration changes, newest first")
    history.add_argument("--entity", default=None, help="model, provider, tier, router_config, ...")
    history.add_argument("--id", dest="entity_id", default=None)
    history.add_argument("--limit", type=int, default=50)
    for parser in (tiers, usage, ledger, history):
        parser.add_argument("--url", help="the gateway's base URL")
        parser.add_argument("--admin-key", help="the admin key")


def run(args: argparse.Namespace, settings: Settings) -> int:
    url, key = connection(args, settings)
    if args.command == "tiers":
        path, query = "/admin/tiers", {}
    elif args.command == "usage":
        path, query = (
            "/admin/usage",
            {"group_by": args.group_by, "from": args.since, "to": args.until},
        )
    elif args.command == "ledger":
        path = "/admin/ledger"
        query = {"user": args.user, "kind": args.kind, "limit": args.limit, "after": args.after}
    else:
        path = "/admin/history"
        query = {"entity": args.entity, "entity_id": args.entity_id, "limit": args.limit}
    given = {name: value for name, value in query.items() if value is not None}
    show(admin_call(url, key, "GET", path + (f"?{urlencode(given)}" if given else "")))
    return 0
