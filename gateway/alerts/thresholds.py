"""Which alerts a charge sets off: a budget's spend crossing one of its
percents in the charge's window, or an account's balance going below an
amount. Each alert has a key naming its threshold and window, so that it
fires once per window: here, once per process (a set of the keys sent), and
across processes and restarts through the delivery log's claim.

A balance alert's window is the day (in the budgets' zone): a balance that
stays low is reported again the next day, not on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from billing.ledger_types import LedgerEntry
from billing.meter import Hold, Meter
from billing.pricing import usd
from config_store.snapshot import Snapshot
from gateway.alerts.webhook import Alert

log = logging.getLogger("gateway.alerts")

_MAX_REMEMBERED = 100_000  # keys kept to skip a repeat without asking the delivery log


class Thresholds:
    def __init__(
        self,
        meter: Meter,
        snapshot: Callable[[], Snapshot],
        fire: Callable[[Alert], None],
        count: Callable[[str], None] | None = None,
    ) -> None:
        self._meter = meter
        self._snapshot = snapshot
        self._fire = fire
        self._count = count
        self._sent: set[str] = set()

    def after_charge(self, hold: Hold, entry: LedgerEntry) -> None:
        """The meter's charge hook: runs on the loop, never waits."""
        snapshot = self._snapshot()
        for limit, since in hold.limits:
            budget = snapshot.budgets.get(limit.budget_id)
            if budget is None or not budget.alerts or limit.limit_nano <= 0:
                continue
            spent = self._meter.spending.spent((limit.scope, limit.subject, limit.window, since))
            if spent is None:
                continue
            for percent in budget.alerts:
                if spent * 100 < percent * limit.limit_nano:
                    break  # the percents are in order
                window = self._meter.window(limit.window, datetime.fromisoformat(hold.at))
                self._once(
                    f"budget:{budget.id}:{limit.subject}:{since or 'lifetime'}:{percent}",
                    "budget.threshold",
                    {
                        "budget": {
                            "id": budget.id,
                            "name": budget.name,
                            "scope": limit.scope,
                            "subject": limit.subject,
                            "window": limit.window,
                            "limit_usd": usd(limit.limit_nano),
                        },
                        "threshold_percent": percent,
                        "spent_usd": usd(spent),
                        "window_started_at": since or None,
                        "resets_at": window.resets_at,
                    },
                )
        self._balance(snapshot, entry.account)

    def _balance(self, snapshot: Snapshot, account: str) -> None:
        alerts = snapshot.balance_alerts.get(account)
        balance = self._meter.cached_balance(account)
        if not alerts or balance is None:
            return
        day = self._meter.window("daily")
        for alert in alerts:
            if balance < alert.below_nano:
                self._once(
                    f"balance:{alert.id}:{day.since}",
                    "balance.low",
                    {
                        "account": account,
                        "alert_id": alert.id,
                        "below_usd": usd(alert.below_nano),
                        "balance_usd": usd(balance),
                    },
                )

    def _once(self, key: str, event: str, payload: dict[str, Any]) -> None:
        if key in self._sent:
            return
        if len(self._sent) >= _MAX_REMEMBERED:
            self._sent.clear()  # the delivery log's claim still keeps each one single
        self._sent.add(key)
        log.warning("alert %s: %s", event, key)
        if self._count is not None:
            self._count(event)
        self._fire(Alert(key, event, payload, datetime.now(UTC).isoformat()))
