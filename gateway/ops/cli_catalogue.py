"""`gateway sync` and `gateway prices import FILE`: the catalogue's long runs,
done in this process against the configured store (with progress on the
terminal), after which a running gateway is asked to refresh its snapshot.

    gateway sync
    gateway prices import FILE [--format F] [--dry-run] [--effective-from T]
                               [--skip-malformed] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from config_store.documents import parse_moment
from config_store.price_import import FORMATS, PriceFileError
from config_store.router_config import ConfigInvalid
from gateway.ops.discovery import DiscoveryBusy
from gateway.ops.price_update import plan, write
from gateway.ops.progress import Progress
from gateway.ops.seed import admin_key
from gateway.services import running
from gateway.settings import Settings

GROUPS = ("sync", "prices")


class CatalogueCommandFailed(Exception):
    pass


def add_commands(commands: Any) -> None:
    sync = commands.add_parser("sync", help="discover models at every enabled provider now")
    sync.add_argument("--url", help="a running gateway to refresh afterwards")
    prices = commands.add_parser("prices", help="import prices from a file")
    actions = prices.add_subparsers(dest="action", required=True)
    load = actions.add_parser("import", help="import a price file")
    load.add_argument("file")
    load.add_argument("--format", choices=FORMATS, default=None)
    load.add_argument("--dry-run", action="store_true")
    load.add_argument("--effective-from", default=None, help="ISO time; default now")
    load.add_argument("--skip-malformed", action="store_true")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--url", help="a running gateway to refresh afterwards")


def run(args: argparse.Namespace, settings: Settings) -> int:
    key = admin_key(settings, create=True) or ""
    if args.command == "sync":
        results = asyncio.run(_sync(settings, key))
        for result in results:
            errors = "; ".join(result["errors"])
            print(
                f"{result['provider']:<12} {result['status']:<7} "
                f"discovered {result['discovered']}, updated {result['updated']}, "
                f"deprecated {result['deprecated']}" + (f"  ({errors})" if errors else "")
            )
        _refresh(args.url, settings, key)
        return 0 if all(r["status"] == "ok" for r in results) else 1
    try:
        document = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        raise CatalogueCommandFailed(f"cannot read {args.file}: {exc}") from None
    try:
        effective: datetime | None = (
            parse_moment(args.effective_from, "--effective-from") if args.effective_from else None
        )
    except ConfigInvalid as exc:
        raise CatalogueCommandFailed(str(exc)) from None
    return asyncio.run(_import(document, effective, args, settings, key))


async def _sync(settings: Settings, key: str) -> list[dict[str, Any]]:
    async with running(settings, key, schedule=False) as services:
        try:
            return await services.discovery.run(Progress("sync", sys.stderr))
        except DiscoveryBusy:
            raise CatalogueCommandFailed("a sync is already running") from None


async def _import(
    document: Any,
    effective: datetime | None,
    args: argparse.Namespace,
    settings: Settings,
    key: str,
) -> int:
    async with running(settings, key, schedule=False) as services:
        snapshot = services.cache.snapshot
        try:
            report, updates = plan(
                document,
                snapshot.models,
                snapshot.providers,
                fmt=args.format,
                dry_run=args.dry_run,
                skip_malformed=args.skip_malformed,
                progress=Progress("rows", sys.stderr),
            )
        except PriceFileError as exc:
            raise CatalogueCommandFailed(str(exc)) from None
        if not args.dry_run and updates:
            await write(
                services.cache.store,
                snapshot.models,
                updates,
                effective_from=effective,
                reason=f"price import from {Path(args.file).name}",
            )
    print(json.dumps(report.to_json(), indent=2) if args.json else render(report.to_json()))
    if not args.dry_run:
        _refresh(args.url, settings, key)
    return 0


def render(report: dict[str, Any]) -> str:
    lines = [
        f"format {report['format']}"
        + (" (dry run: nothing was written)" if report["dry_run"] else ""),
        f"rows read {report['rows_read']}, matched {report['matched']}",
        f"inserted {len(report['inserted'])}, changed {len(report['changed'])}, "
        f"unchanged {len(report['unchanged'])}, skipped {len(report['skipped'])}",
    ]
    for entry in report["inserted"]:
        new = entry["new"]
        lines.append(
            f"  inserted {entry['model_id']}: input {new['input_price_per_million']}, "
            f"output {new['output_price_per_million']} per 1M"
        )
    for entry in report["changed"]:
        old, new = entry["old"], entry["new"]
        moved = [
            f"{name.split('_price')[0]} {old[name]} -> {new[name]}"
            for name in new
            if old[name] != new[name]
        ]
        lines.append(f"  changed {entry['model_id']}: {', '.join(moved)}")
    for entry in report["skipped"]:
        lines.append(f"  skipped row {entry['row']} {entry['name']}: {entry['reason']}")
    coverage = report["coverage"]
    lines.append(
        f"coverage: {coverage['priced']}/{coverage['active_models']} active models priced "
        f"({coverage['percent']}%)"
    )
    return "\n".join(lines)


def _refresh(url: str | None, settings: Settings, key: str) -> None:
    """Ask a running gateway to reload its snapshot now; fine if none runs."""
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    request = urllib.request.Request(  # noqa: S310 (the operator's own gateway)
        f"{base}/admin/cache/refresh", method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass
    except OSError:
        pass
