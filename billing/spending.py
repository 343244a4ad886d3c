"""What each budget's subject has spent in its current window, and what its
open holds reserve: the budgets' half of the meter (`billing.meter`).

A window's spend is read from the ledger once (the charges of the subject
from the window's start on), then kept here: every charge this process
settles adds to it at once. A charge settled while the read is out may or may
not be in what the read returns, so it is added to what was read: the figure
can only be too high, never too low, so a budget is never overspent because
of a read in flight. When a window ends, its figure is dropped and the next
window's is read; nothing resets on a schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from billing.windows import Window

Subject = tuple[str, str]  # (scope, subject): ("team", "eng"), ("end_user", "<key id>/<id>")
Counter = tuple[str, str, str, str]  # (scope, subject, window kind, window start)


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget as admission applies it to one request."""

    budget_id: str
    scope: str
    subject: str
    window: str
    limit_nano: int


class BudgetExceeded(Exception):
    def __init__(self, limit: Limit, available_nano: int, needed_nano: int, resets_at: str | None):
        super().__init__(f"budget {limit.budget_id}: {available_nano} left, needed {needed_nano}")
        self.limit = limit
        self.available_nano = available_nano
        self.needed_nano = needed_nano
        self.resets_at = resets_at


class Spending:
    def __init__(
        self,
        read: Callable[[str, str, str], Awaitable[int]],
        committed: Callable[[], Awaitable[None]],
    ) -> None:
        self._read = read  # the ledger's `spent(scope, subject, since)`
        self._committed = committed
        self._spent: dict[tuple[str, str, str], tuple[str, int]] = {}  # -> (since, spent)
        self._loading: dict[Counter, asyncio.Future[int]] = {}
        self._during: dict[Counter, int] = {}  # charges settled while a counter loads
        self._held: dict[Subject, int] = {}
        self._moves: dict[tuple[str, str, str], int] = {}  # charges added, per window kind

    async def load(self, counter: Counter) -> None:
        """Make sure `counter`'s window is known (concurrent callers share a read)."""
        scope, subject, kind, since = counter
        known = self._spent.get((scope, subject, kind))
        if known is not None and known[0] == since:
            return
        pending = self._loading.get(counter)
        if pending is None:
            self._during[counter] = 0  # from now on, a charge settled is added to the read
            pending = asyncio.ensure_future(self._load(counter))
            self._loading[counter] = pending
        await asyncio.shield(pending)

    async def _load(self, counter: Counter) -> int:
        scope, subject, kind, since = counter
        try:
            # Rows submitted before the read are committed first, so it sees them.
            await self._committed()
            value = await self._read(scope, subject, since) + self._during[counter]
            known = self._spent.get((scope, subject, kind))
            if known is None or known[0] <= since:  # never step back to an older window
                self._spent[(scope, subject, kind)] = (since, value)
            return value
        finally:
            self._during.pop(counter, None)
            self._loading.pop(counter, None)

    def spent(self, counter: Counter) -> int | None:
        """What the window has been charged (None while it is not loaded)."""
        scope, subject, kind, since = counter
        known = self._spent.get((scope, subject, kind))
        return known[1] if known is not None and known[0] == since else None

    def latest(self, scope: str, subject: str, kind: str) -> str | None:
        """The start of the newest window of this kind known for the subject."""
        known = self._spent.get((scope, subject, kind))
        return None if known is None else known[0]

    def held(self, scope: str, subject: str) -> int:
        return self._held.get((scope, subject), 0)

    def room(self, limit: Limit, window: Window) -> int | None:
        """What the budget still allows after its open holds (None: not loaded)."""
        spent = self.spent((limit.scope, limit.subject, window.kind, window.since))
        if spent is None:
            return None
        return limit.limit_nano - spent - self.held(limit.scope, limit.subject)

    def reserve(self, subjects: tuple[Subject, ...], amount_nano: int) -> None:
        for subject in subjects:
            self._held[subject] = self._held.get(subject, 0) + amount_nano

    def unreserve(self, subjects: tuple[Subject, ...], amount_nano: int) -> None:
        for subject in subjects:
            left = self._held.get(subject, 0) - amount_nano
            if left:
                self._held[subject] = left
            else:
                self._held.pop(subject, None)

    def add(self, counters: tuple[Counter, ...], amount_nano: int) -> None:
        """A charge (or, negative, its undoing) in each window it falls in."""
        for counter in counters:
            scope, subject, kind, since = counter
            known = self._spent.get((scope, subject, kind))
            self._moves[(scope, subject, kind)] = self._moves.get((scope, subject, kind), 0) + 1
            if known is not None and known[0] == since:
                self._spent[(scope, subject, kind)] = (since, known[1] + amount_nano)
            elif counter in self._during:
                self._during[counter] += amount_nano

    async def refresh(self) -> None:
        """Read every window known here again: with several instances sharing a
        store, each learns the others' charges this way (as balances are
        resynced). A window charged here while it was read keeps its own figure
        until the next refresh."""
        for (scope, subject, kind), (since, _) in list(self._spent.items()):
            moves = self._moves.get((scope, subject, kind), 0)
            await self._committed()  # every charge counted so far is in what is read
            value = await self._read(scope, subject, since)
            known = self._spent.get((scope, subject, kind))
            moved = self._moves.get((scope, subject, kind), 0) != moves
            if known is not None and known[0] == since and not moved:
                self._spent[(scope, subject, kind)] = (since, value)
