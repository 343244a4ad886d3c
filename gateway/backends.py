"""The store, ledger and reports a Settings object asks for: SQLite (one
instance, the default) or Firestore (several instances)."""

from __future__ import annotations

from billing.firestore_ledger import FirestoreLedger
from billing.firestore_reports import FirestoreReports
from billing.ledger_types import Ledger
from billing.reports import LedgerReports, Reports
from billing.sqlite_ledger import SqliteLedger
from config_store.firestore import FirestoreStore
from config_store.reachability import Reachability
from config_store.sqlite import SqliteStore
from config_store.store import ConfigStore
from gateway.settings import Settings


def make_store(settings: Settings, ledger: Ledger | None = None) -> ConfigStore:
    """On SQLite the store writes through `ledger`'s writer, the one connection of
    the process that writes the file; without a ledger (the CLI, the seed) it
    has a writer of its own."""
    if settings.store == "firestore":
        return FirestoreStore(settings.firestore_project, settings.firestore_emulator_host)
    return SqliteStore(settings.database, ledger if isinstance(ledger, SqliteLedger) else None)


def make_ledger(settings: Settings, reach: Reachability | None = None) -> Ledger:
    if settings.store == "firestore":
        return FirestoreLedger(
            settings.firestore_project,
            settings.firestore_emulator_host,
            settings.outbox,
            flush_seconds=settings.ledger_flush_seconds,
            max_batch=settings.ledger_max_batch,
            synchronous=settings.ledger_sync,
            busy_timeout=settings.ledger_busy_timeout,
            timeout=settings.store_timeout_seconds,
            # A store that is back is tried again well within the stale bound.
            max_backoff=min(5.0, settings.firestore_stale_seconds / 2),
            reach=reach,
        )
    return SqliteLedger(
        settings.database,
        max_batch=settings.ledger_max_batch,
        synchronous=settings.ledger_sync,
        busy_timeout=settings.ledger_busy_timeout,
    )


def make_reports(settings: Settings, store: ConfigStore) -> Reports:
    if isinstance(store, FirestoreStore):
        return FirestoreReports(lambda: store.db)
    return LedgerReports(settings.database)
