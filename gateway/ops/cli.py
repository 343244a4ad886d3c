"""`gateway serve | seed | migrate | new-secret-key | set-provider-key`, and the
operator commands `users`, `keys`, `models` (see gateway.ops.cli_admin) and the views
`tiers`, `usage`, `ledger`, `history` (gateway.ops.cli_reports); teams, budgets and
alerts (gateway.ops.cli_budgets)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from billing.ledger_types import LedgerError
from config_store.sqlite import SqliteStore
from config_store.store import StoreError
from gateway.backends import make_store
from gateway.ops import cli_admin, cli_budgets, cli_catalogue, cli_reports
from gateway.ops.seed import admin_key, read_secret, seed
from gateway.providers.vault import Vault, VaultError
from gateway.settings import Settings, SettingsError


def _request_log(enabled: bool) -> None:
    """One JSON line per request on standard output, or none."""
    requests = logging.getLogger("gateway.requests")
    requests.propagate = False
    requests.setLevel(logging.INFO if enabled else logging.WARNING)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.edge.server import uvicorn_config

    Vault(settings.secret_key)  # a malformed GATEWAY_SECRET_KEY stops us here, not mid-start
    key = admin_key(settings, create=True)
    assert key is not None
    demo = read_secret(settings.demo_key_file)
    print(f"demo API key: {demo or '(none yet: run `gateway seed`)'}", flush=True)
    print(f"admin key: {key}", flush=True)
    print(f"serving on http://{host}:{port}", flush=True)
    print(f"console: http://{host}:{port}/console/ (sign in with the admin key)", flush=True)
    _request_log(settings.access_log)
    config = uvicorn_config(
        create_app(settings, admin_key=key),
        settings,
        host=host,
        port=port,
        loop="auto",
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3  # uvicorn's own status for a failed start


async def _migrate(settings: Settings) -> int:
    if settings.store != "sqlite":
        print("Firestore has no schema to migrate; `gateway seed` fills an empty project.")
        return 0
    store = SqliteStore(settings.database)
    await store.open()
    try:
        applied = await store.migrate()
        version = await store.schema_version()
    finally:
        await store.close()
    done = ", ".join(map(str, applied)) if applied else "none"
    print(f"{settings.database}: schema version {version} (applied now: {done})")
    return 0


async def _migrate_store(settings: Settings, source: str, target: str, dry_run: bool) -> int:
    from gateway.ops import migrate_store  # Firestore's client: loaded for this command only

    kind, _, path = source.partition(":")
    try:
        if kind != "sqlite" or not path:
            raise migrate_store.MigrationError(f"--from takes sqlite:PATH, got {source!r}")
        into, ledger = migrate_store.parse_target(
            target, settings.firestore_emulator_host, settings.data_dir
        )
    except migrate_store.MigrationError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    origin = SqliteStore(Path(path))
    summary = await migrate_store.migrate(origin, into, ledger, dry_run=dry_run)
    print(migrate_store.render(summary, dry_run))
    return 0


async def _set_provider_key(settings: Settings, provider_id: str) -> int:
    plain = sys.stdin.readline().strip()
    if not plain:
        print("gateway: no key on standard input", file=sys.stderr)
        return 2
    sealed = Vault(settings.secret_key).seal(plain)
    store = make_store(settings)
    await store.open()
    try:
        await store.migrate()
        catalogue = await store.load()
        found = [p for p in catalogue.providers if p.id == provider_id]
        if not found:
            print(f"gateway: no provider '{provider_id}'", file=sys.stderr)
            return 2
        await store.put_provider(replace(found[0], api_key=sealed))
    finally:
        await store.close()
    print(f"stored an encrypted API key for '{provider_id}' (ending ...{plain[-4:]})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="LLM gateway with live metering")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("seed", help="load the demo catalogue, user and key (idempotent)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("new-secret-key", help="print a new key for GATEWAY_SECRET_KEY")
    set_key = commands.add_parser(
        "set-provider-key",
        help="store a provider's API key, read from standard input, encrypted",
    )
    set_key.add_argument("provider")
    move = commands.add_parser(
        "migrate-store", help="copy configuration, users and balances to another store"
    )
    move.add_argument("--from", dest="source", required=True, help="sqlite:PATH")
    move.add_argument("--to", dest="target", required=True, help="firestore:PROJECT or sqlite:PATH")
    move.add_argument("--dry-run", action="store_true")
    cli_admin.add_commands(commands)
    cli_catalogue.add_commands(commands)
    cli_reports.add_commands(commands)
    cli_budgets.add_commands(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if args.command in cli_admin.GROUPS:
            return cli_admin.run(args, settings)
        if args.command in cli_reports.GROUPS:
            return cli_reports.run(args, settings)
        if args.command in cli_budgets.GROUPS:
            return cli_budgets.run(args, settings)
        if args.command in cli_catalogue.GROUPS:
            return cli_catalogue.run(args, settings)
        if args.command == "serve":
            return _serve(settings, args.host or settings.host, args.port or settings.port)
        if args.command == "seed":
            print(asyncio.run(seed(settings)))
            return 0
        if args.command == "new-secret-key":
            print(Vault.new_secret_key())
            return 0
        if args.command == "set-provider-key":
            return asyncio.run(_set_provider_key(settings, args.provider))
        if args.command == "migrate-store":
            return asyncio.run(_migrate_store(settings, args.source, args.target, args.dry_run))
        return asyncio.run(_migrate(settings))
    except (cli_admin.AdminCallFailed, cli_catalogue.CatalogueCommandFailed) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except (
        SettingsError,
        StoreError,
        VaultError,
        LedgerError,
    ) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
