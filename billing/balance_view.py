"""With several instances on Firestore: how fresh this instance's view of the
shared balances is, and whether its own charges reach the others.

An instance holds and charges against the balances it read last; it learns of
the other instances' charges when it re-reads them (the resync) after they
shipped theirs. So it admits a paid request only while both hold within the
stale bound: its last successful resync is recent, and the oldest row of its
outbox has not waited longer to be shipped. See the README's overspend bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from billing.ledger_types import LedgerError
from billing.meter import Meter

if TYPE_CHECKING:  # imported by whoever builds a view, only with Firestore configured
    from billing.firestore_ledger import FirestoreLedger, Shipping

log = logging.getLogger("gateway.balances")


@dataclass(frozen=True, slots=True)
class ViewState:
    """For /health and /metrics."""

    age_seconds: float  # since the last successful resync (or the ledger's start)
    stale_after_seconds: float
    resyncs: int
    resync_failures: int
    last_error: str | None
    refusal: str | None  # why paid requests are refused now; None while they are admitted


@dataclass(frozen=True, slots=True)
class StoreState:
    """Everything /health and /metrics say of the shared store."""

    reachable: bool
    failures: Mapping[str, int]  # by operation: refresh, balances, shipping, ...
    listening: bool | None
    view: ViewState
    shipping: Shipping


class BalanceView:
    def __init__(
        self,
        ledger: FirestoreLedger,
        meter: Meter,
        *,
        stale_seconds: float,
        sync_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._meter = meter
        self._stale = stale_seconds
        self._sync = sync_seconds
        self._clock = clock
        self._resynced_at = clock()
        self.resyncs = 0
        self.resync_failures = 0
        self.last_error: str | None = None

    def started(self) -> None:
        """The ledger (re)started: no balance is held yet, so none is stale."""
        self._resynced_at = self._clock()

    def age(self) -> float:
        return max(self._clock() - self._resynced_at, 0.0)

    @property
    def ledger(self) -> FirestoreLedger:
        return self._ledger

    async def resync(self) -> None:
        """Re-read every balance this instance holds, in one read."""
        began = self._clock()
        await self._meter.resync(self._read)
        await self._meter.spending.refresh()  # the budgets' windows, likewise
        self._resynced_at = max(self._resynced_at, began)
        self.resyncs += 1

    async def _read(self, users: list[str]) -> Mapping[str, int | None]:
        await self._ledger.committed()  # the rows of every move counted so far
        return await self._ledger.balances(users)

    async def resync_forever(self) -> None:
        """Resync every `sync_seconds` until cancelled; a failure is counted and
        shown, and the view ages until a resync succeeds."""
        while True:
            await asyncio.sleep(self._sync)
            if not self._ledger.started:
                continue
            try:
                await self.resync()
            except LedgerError as exc:
                self.resync_failures += 1
                self.last_error = str(exc)[:300]
                log.warning("balance resync failed (view %.1f s old): %s", self.age(), exc)

    def refusal(self) -> str | None:
        """Why this instance must not admit a paid request now, or None."""
        age = self.age()
        if age > self._stale:
            return (
                f"this instance's view of the balances is {age:.0f} s old "
                f"(the limit is {self._stale:g} s): the store does not answer"
            )
        if not self._ledger.started:
            return None
        try:
            waited = self._ledger.oldest_unshipped_seconds()
        except LedgerError as exc:
            return f"the ledger outbox cannot be read: {exc}"
        if waited > self._stale:
            return (
                f"this instance's ledger rows have waited {waited:.0f} s to be shipped "
                f"(the limit is {self._stale:g} s)"
            )
        return None

    def shipping(self) -> Shipping:
        return self._ledger.shipping()

    def state(self) -> ViewState:
        return ViewState(
            age_seconds=round(self.age(), 3),
            stale_after_seconds=self._stale,
            resyncs=self.resyncs,
            resync_failures=self.resync_failures,
            last_error=self.last_error,
            refusal=self.refusal(),
        )
