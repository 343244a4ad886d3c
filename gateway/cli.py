"""`gateway serve | seed | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from config_store.sqlite import SqliteStore
from config_store.store import StoreError
from gateway.seed import admin_key, read_secret, seed
from gateway.settings import Settings, SettingsError


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from gateway.app import create_app

    key = admin_key(settings, create=True)
    assert key is not None
    demo = read_secret(settings.demo_key_file)
    print(f"demo API key: {demo or '(none yet: run `gateway seed`)'}", flush=True)
    print(f"admin key: {key}", flush=True)
    print(f"serving on http://{host}:{port}", flush=True)
    uvicorn.run(
        create_app(settings, admin_key=key),
        host=host,
        port=port,
        workers=1,
        loop="auto",
        http="auto",
        access_log=settings.access_log,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    return 0


async def _migrate(settings: Settings) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="LLM gateway with live metering")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("seed", help="load the demo catalogue, user and key (idempotent)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(settings, args.host or settings.host, args.port or settings.port)
        if args.command == "seed":
            print(asyncio.run(seed(settings)))
            return 0
        return asyncio.run(_migrate(settings))
    except (SettingsError, StoreError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
