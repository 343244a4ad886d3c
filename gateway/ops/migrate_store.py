"""`gateway migrate-store --from sqlite:PATH --to firestore:PROJECT [--dry-run]`:
copy the whole configuration and the users, with their balances, from one
store to another (an operator's one-off migration, run again safely).

Idempotent: what the target already holds unchanged is left alone, and each
user's balance arrives as one opening ledger row with a fixed id
(`migrate:<user>:opening-balance`), so running it twice credits once. The
source's ledger rows stay where they are, as the record of the past. A dry
run reads both stores, writes nothing, and prints the same summary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from billing.firestore_ledger import FirestoreLedger
from billing.ledger_types import Ledger, LedgerEntry
from billing.reports import LedgerReports
from billing.sqlite_ledger import SqliteLedger
from config_store.firestore import FirestoreStore
from config_store.schema import Catalogue
from config_store.sqlite import SqliteStore
from config_store.store import ConfigStore

T = TypeVar("T")
ACTOR = "migrate-store"


class MigrationError(ValueError):
    """A store address that cannot be used."""


def parse_target(address: str, emulator_host: str, data_dir: Path) -> tuple[ConfigStore, Ledger]:
    kind, _, where = address.partition(":")
    if not where:
        raise MigrationError(f"expected sqlite:PATH or firestore:PROJECT, got {address!r}")
    if kind == "sqlite":
        ledger = SqliteLedger(Path(where))
        return SqliteStore(Path(where), ledger), ledger  # one writer for the file
    if kind == "firestore":
        outbox = data_dir / f"migrate-outbox-{where}.db"
        return FirestoreStore(where, emulator_host), FirestoreLedger(where, emulator_host, outbox)
    raise MigrationError(f"unknown store kind {kind!r}: sqlite or firestore")


async def migrate(
    source: SqliteStore, target: ConfigStore, ledger: Ledger, *, dry_run: bool
) -> dict[str, dict[str, int]]:
    """Copy everything; returns per kind how many were created, updated, unchanged."""
    await source.open()
    await target.open()
    try:
        await source.migrate()
        await target.migrate()
        have, want = await target.load(), await source.load()
        summary = {
            "providers": await _copy(
                want.providers, have.providers, lambda p: p.id, target.put_provider, dry_run
            ),
            "tiers": await _copy(want.tiers, have.tiers, lambda t: t.id, target.put_tier, dry_run),
            "models": await _copy(
                want.models, have.models, lambda m: m.model_id, target.put_model, dry_run
            ),
            "users": await _copy(want.users, have.users, lambda u: u.id, target.put_user, dry_run),
            "api_keys": await _copy(
                want.api_keys, have.api_keys, lambda k: k.key_hash, target.put_api_key, dry_run
            ),
        }
        summary["profiles"] = await _copy_documents(
            target,
            "model_profile",
            {p.model_id: p.to_json() for p in want.profiles},
            {p.model_id: p.to_json() for p in have.profiles},
            dry_run,
        )
        summary["router_config"] = await _copy_documents(
            target,
            "router_config",
            {"default": want.router_config.to_json()} if want.router_config else {},
            {"default": have.router_config.to_json()} if have.router_config else {},
            dry_run,
        )
        summary["prices"] = await _copy_prices(want, have, target, dry_run)
        summary["balances"] = await _copy_balances(source.path, want, ledger, dry_run)
    finally:
        await source.close()
        await target.close()
    return summary


async def _copy(
    wanted: Iterable[T],
    present: Iterable[T],
    key: Callable[[T], str],
    put: Callable[[T], Awaitable[bool]],
    dry_run: bool,
) -> dict[str, int]:
    existing = {key(item): item for item in present}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for item in wanted:
        current = existing.get(key(item))
        outcome = "created" if current is None else "unchanged" if current == item else "updated"
        counts[outcome] += 1
        if outcome != "unchanged" and not dry_run:
            await put(item)
    return counts


async def _copy_documents(
    target: ConfigStore,
    entity: str,
    wanted: dict[str, dict[str, Any]],
    present: dict[str, dict[str, Any]],
    dry_run: bool,
) -> dict[str, int]:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for entity_id, document in wanted.items():
        current = present.get(entity_id)
        outcome = (
            "created" if current is None else "unchanged" if current == document else "updated"
        )
        counts[outcome] += 1
        if outcome != "unchanged" and not dry_run:
            await target.change(entity, entity_id, document, actor=ACTOR, reason="migrate-store")
    return counts


async def _copy_prices(
    want: Catalogue, have: Catalogue, target: ConfigStore, dry_run: bool
) -> dict[str, int]:
    present = {(p.model_id, p.effective_from, p.recorded_at) for p in have.prices}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for point in want.prices:
        if (point.model_id, point.effective_from, point.recorded_at) in present:
            counts["unchanged"] += 1
            continue
        counts["created"] += 1
        if not dry_run:
            await target.add_price(point)
    return counts


async def _copy_balances(
    source: Path, want: Catalogue, ledger: Ledger, dry_run: bool
) -> dict[str, int]:
    balances = await LedgerReports(source).balances()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    await ledger.start()
    try:
        for user in want.users:
            amount = balances.get(user.id, (0, 0, 0))[0]
            request_id = f"migrate:{user.id}:opening-balance"
            if not amount or await ledger.has_entry(request_id):
                counts["unchanged"] += 1
                continue
            counts["created"] += 1
            if not dry_run:
                entry = LedgerEntry(
                    request_id=request_id,
                    user_id=user.id,
                    kind="topup",
                    amount_nano=amount,
                    created_at=datetime.now(UTC).isoformat(),
                    reason="balance carried over by migrate-store",
                )
                await ledger.submit(entry)
        await ledger.drained()
    finally:
        await ledger.close()
    return counts


def render(summary: dict[str, dict[str, int]], dry_run: bool) -> str:
    lines = ["dry run: nothing was written" if dry_run else "migrated"]
    for kind, counts in summary.items():
        lines.append(
            f"  {kind:<14} {counts['created']:>5} created  {counts['updated']:>5} updated  "
            f"{counts['unchanged']:>5} unchanged"
        )
    return "\n".join(lines)
