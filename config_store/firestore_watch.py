"""The Firestore store's real-time listeners on the config collections: a
change made by another instance (or in the console) refreshes the snapshot."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from config_store.firestore_client import client

CONFIG_COLLECTIONS = (
    "providers",
    "model_configurations",
    "pricing_tiers",
    "users",
    "api_keys",
    "model_profiles",
    "router_config",
    "model_prices",
    "teams",
    "budgets",
    "balance_alerts",
)


class Watching:
    """Real-time listeners on the config collections (a sync client's threads)."""

    def __init__(self, project: str, emulator_host: str, on_change: Callable[[], None]) -> None:
        self._client = client(project, emulator_host, sync=True)

        def changed(*_: Any) -> None:
            on_change()

        self._watches = [
            self._client.collection(name).on_snapshot(changed) for name in CONFIG_COLLECTIONS
        ]

    def alive(self) -> bool:
        return all(watch.is_active for watch in self._watches)

    def stop(self) -> None:
        """Unsubscribe every listener at once: one whose stream is failing waits a
        second for its thread, and there is one per collection."""

        def unsubscribe(watch: Any) -> None:
            with contextlib.suppress(Exception):  # already closed by a lost stream
                watch.unsubscribe()

        threads = [threading.Thread(target=unsubscribe, args=(w,)) for w in self._watches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._client.close()
