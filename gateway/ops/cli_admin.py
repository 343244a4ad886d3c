"""The operator commands of the `gateway` CLI: they call a running gateway's
admin API (so its in-memory balances and snapshot see every change at once).

    gateway users create ID [--name N] [--tier T]
    gateway users topup ID AMOUNT_USD [--reason R] [--idempotency-key K]
    gateway keys create USER_ID [--name N] [--models a,b] [--rpm N] [--tpm N] [--spend-cap USD]
    gateway keys revoke KEY_ID
    gateway models export [FILE]
    gateway models import FILE [--dry-run]

`--url` defaults to http://GATEWAY_HOST:GATEWAY_PORT; `--admin-key` to
GATEWAY_ADMIN_KEY or the key file in the data directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.ops.seed import admin_key
from gateway.settings import Settings

GROUPS = ("users", "keys", "models")


class AdminCallFailed(Exception):
    """The admin API answered with an error (or could not be reached)."""


def add_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", help="the gateway's base URL")
        parser.add_argument("--admin-key", help="the admin key")

    users = commands.add_parser("users", help="create users and top up balances")
    user_commands = users.add_subparsers(dest="action", required=True)
    create = user_commands.add_parser("create", help="create a user")
    create.add_argument("id")
    create.add_argument("--name", default="")
    create.add_argument("--tier", default=None)
    topup = user_commands.add_parser("topup", help="add to a user's balance (a ledger row)")
    topup.add_argument("id")
    topup.add_argument("amount", help="USD, e.g. 25.00")
    topup.add_argument("--reason", default="")
    topup.add_argument("--idempotency-key", default=None)
    for parser in (create, topup):
        common(parser)

    keys = commands.add_parser("keys", help="create and revoke API keys")
    key_commands = keys.add_subparsers(dest="action", required=True)
    new = key_commands.add_parser("create", help="create a key; it is printed once")
    new.add_argument("user")
    new.add_argument("--name", default="")
    new.add_argument("--models", default="", help="comma-separated model ids it may use")
    new.add_argument("--rpm", type=int, default=0)
    new.add_argument("--tpm", type=int, default=0)
    new.add_argument("--spend-cap", default=None, help="USD the key may spend in all")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    for parser in (new, revoke):
        common(parser)

    models = commands.add_parser("models", help="export and import the model catalogue")
    model_commands = models.add_subparsers(dest="action", required=True)
    export = model_commands.add_parser("export", help="write every model as JSON")
    export.add_argument("file", nargs="?", default="-")
    load = model_commands.add_parser("import", help="create or update models from a file")
    load.add_argument("file")
    load.add_argument("--dry-run", action="store_true")
    for parser in (export, load):
        common(parser)


def connection(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """The running gateway's URL and the admin key to call it with."""
    url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    key = args.admin_key or admin_key(settings, create=False)
    if not key:
        raise AdminCallFailed("no admin key: pass --admin-key or set GATEWAY_ADMIN_KEY")
    return url, key


def run(args: argparse.Namespace, settings: Settings) -> int:
    url, key = connection(args, settings)

    def call(method: str, path: str, body: Any = None) -> Any:
        return admin_call(url, key, method, path, body)

    if args.command == "users" and args.action == "create":
        user = {"id": args.id, "name": args.name or args.id}
        if args.tier:
            user["tier_id"] = args.tier
        show(call("POST", "/admin/users", user))
    elif args.command == "users":
        credit = {"amount_usd": args.amount, "reason": args.reason}
        if args.idempotency_key:
            credit["idempotency_key"] = args.idempotency_key
        show(call("POST", f"/admin/users/{args.id}/topup", credit))
    elif args.command == "keys" and args.action == "create":
        limits: dict[str, Any] = {"name": args.name, "rpm": args.rpm, "tpm": args.tpm}
        if args.models:
            limits["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()]
        if args.spend_cap is not None:
            limits["spend_cap_usd"] = args.spend_cap
        made = call("POST", f"/admin/users/{args.user}/keys", limits)
        print(f"key (shown once): {made.pop('key')}", file=sys.stderr)
        show(made)
    elif args.command == "keys":
        show(call("POST", f"/admin/keys/{args.key_id}/revoke"))
    elif args.action == "export":
        text = json.dumps(call("GET", "/admin/models/export"), indent=2) + "\n"
        if args.file == "-":
            sys.stdout.write(text)
        else:
            Path(args.file).write_text(text)
    else:
        try:
            rows = json.loads(Path(args.file).read_text())
        except (OSError, ValueError) as exc:
            raise AdminCallFailed(f"cannot read {args.file}: {exc}") from None
        path = "/admin/models/bulk" + ("?dry_run=true" if args.dry_run else "")
        show(call("POST", path, rows))
    return 0


def show(value: Any) -> None:
    print(json.dumps(value, indent=2))


def admin_call(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (the operator's own gateway URL)
        url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise AdminCallFailed(f"{exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdminCallFailed(f"cannot reach {url}: {exc}") from None
