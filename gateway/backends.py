"""The store, ledger and reports a Settings object asks for: SQLite (one
instance, the default) or Firestore (several instances).

Firestore's modules are imported only when Firestore is configured: its client
and gRPC cost a SQLite deployment some 45 MB of memory and a third of a second
of start-up for nothing."""

from __future__ import annotations

from typing import Any

from billing.balance_view import BalanceView
from billing.ledger_types import Ledger
from billing.meter import Meter
from billing.reports import LedgerReports, Reports
from billing.sqlite_ledger import SqliteLedger
from config_store.reachability import Reachability
from config_store.sqlite import SqliteStore
from config_store.store import ConfigStore
from gateway.alerts.delivery_logs import SqliteDeliveryLog
from gateway.alerts.webhook import DeliveryLog, MemoryDeliveryLog
from gateway.settings import Settings


def make_store(settings: Settings, ledger: Ledger | None = None) -> ConfigStore:
    """On SQLite the store writes through `ledger`'s writer, the one connection of
    the process that writes the file; without a ledger (the CLI, the seed) it
    has a writer of its own."""
    if settings.store == "firestore":
        from config_store.firestore import FirestoreStore

        return FirestoreStore(settings.firestore_project, settings.firestore_emulator_host)
    return SqliteStore(settings.database, ledger if isinstance(ledger, SqliteLedger) else None)


def make_ledger(settings: Settings, reach: Reachability | None = None) -> Ledger:
    if settings.store == "firestore":
        from billing.firestore_ledger import FirestoreLedger

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
    if settings.store == "firestore":
        from billing.firestore_reports import FirestoreReports

        return FirestoreReports(lambda: _db(store))
    return LedgerReports(settings.database)


def make_balance_view(settings: Settings, ledger: Ledger, meter: Meter) -> BalanceView | None:
    """Firestore: how fresh this instance's view of the shared balances is."""
    if settings.store != "firestore":
        return None
    from billing.firestore_ledger import FirestoreLedger

    assert isinstance(ledger, FirestoreLedger)
    return BalanceView(
        ledger,
        meter,
        stale_seconds=settings.firestore_stale_seconds,
        sync_seconds=settings.balance_sync_seconds,
    )


def make_alert_log(settings: Settings, store: ConfigStore, ledger: Ledger) -> DeliveryLog:
    """Where alert deliveries are recorded (and claimed once)."""
    if settings.store == "firestore":
        from gateway.alerts.firestore_log import FirestoreDeliveryLog

        return FirestoreDeliveryLog(lambda: _db(store))
    if isinstance(ledger, SqliteLedger):
        return SqliteDeliveryLog(settings.database, ledger)
    return MemoryDeliveryLog()


def _db(store: ConfigStore) -> Any:
    return store.db  # type: ignore[attr-defined]  # the Firestore store's client
