"""Holds, settlement and balances.

This process is the only one that moves balances in its store (SQLite: one
serving process), so it keeps each user's balance in memory once read, with the
sum of the open holds beside it. A hold is taken before any provider is
called; it fails when the balance minus the open holds does not cover it.
Settlement releases the hold, applies the real cost at once (so the next hold
sees it) and waits for the ledger row to commit; if that commit fails the
in-memory balance is put back and the caller is told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from billing.ledger_types import Ledger, LedgerEntry, LedgerError
from billing.spending import BudgetExceeded, Counter, Limit, Spending, Subject
from billing.windows import Window, window

log = logging.getLogger("gateway.meter")


class InsufficientBalance(Exception):
    def __init__(self, available_nano: int, needed_nano: int) -> None:
        super().__init__(f"available {available_nano} nano-USD, needed {needed_nano}")
        self.available_nano = available_nano
        self.needed_nano = needed_nano


class UnknownAccount(Exception):
    """The user has no balance row."""


@dataclass(slots=True)
class Hold:
    user_id: str  # the account it holds: the user's, or "team:<id>" for a team's wallet
    amount_nano: int
    open: bool = True
    limits: tuple[tuple[Limit, str], ...] = ()  # each budget, with its window's start
    at: str = ""  # when it was taken (its charge's `created_at`)

    @property
    def subjects(self) -> tuple[Subject, ...]:
        """The budgets' subjects it is reserved against, each once."""
        return tuple(dict.fromkeys((limit.scope, limit.subject) for limit, _ in self.limits))

    @property
    def counters(self) -> tuple[Counter, ...]:
        """The windows its charge counts in, each once."""
        return tuple(
            dict.fromkeys((lm.scope, lm.subject, lm.window, since) for lm, since in self.limits)
        )


class Meter:
    def __init__(
        self,
        ledger: Ledger,
        *,
        zone: ZoneInfo | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._ledger = ledger
        self._zone = zone or ZoneInfo("UTC")  # where budgets' days, weeks and months begin
        self._clock = clock or (lambda: datetime.now(UTC))
        self._balances: dict[str, int] = {}
        self._held: dict[str, int] = {}
        self._loading: dict[str, asyncio.Future[int | None]] = {}
        self.spending = Spending(ledger.spent, ledger.committed)
        # Told of every charge once its row is committed (budget and balance alerts).
        self.on_charge: Callable[[Hold, LedgerEntry], None] | None = None
        # Each user's count of balance moves made here, so that a resync whose read
        # may have missed one (it moved while the read was out) keeps the local value.
        self._moves: dict[str, int] = {}

    def window(self, kind: str, now: datetime | None = None) -> Window:
        return window(kind, now or self._clock(), self._zone)

    async def _balance(self, user_id: str) -> int:
        balance = self._balances.get(user_id)
        if balance is not None:
            return balance
        # Concurrent first requests of one user share one read.
        pending = self._loading.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._ledger.balance(user_id))
            self._loading[user_id] = pending
        try:
            loaded = await asyncio.shield(pending)
        finally:
            self._loading.pop(user_id, None)
        if loaded is None:
            raise UnknownAccount(user_id)
        return self._balances.setdefault(user_id, loaded)

    async def balance(self, user_id: str) -> int:
        return await self._balance(user_id)

    async def resync(
        self, read: Callable[[list[str]], Awaitable[Mapping[str, int | None]]] | None = None
    ) -> None:
        """Re-read every known balance (with `read`, all at once; else one by one
        from the ledger): with several instances sharing a store, each sees the
        others' charges this often. `read` must see every row submitted before it
        was called. A balance that moved here while it was being read keeps its
        local value until the next resync."""
        users = list(self._balances)
        moves = {user_id: self._moves.get(user_id, 0) for user_id in users}
        if read is None:
            fresh: Mapping[str, int | None] = {u: await self._ledger.balance(u) for u in users}
        else:
            fresh = await read(users)
        for user_id in users:
            value = fresh.get(user_id)
            if value is not None and self._moves.get(user_id, 0) == moves[user_id]:
                self._balances[user_id] = value

    def _moved(self, user_id: str) -> None:
        self._moves[user_id] = self._moves.get(user_id, 0) + 1

    def open_holds(self) -> dict[str, int]:
        return dict(self._held)

    def cached_balance(self, user_id: str) -> int | None:
        return self._balances.get(user_id)

    async def available(self, user_id: str) -> int:
        return await self._balance(user_id) - self._held.get(user_id, 0)

    async def hold(self, user_id: str, amount_nano: int, limits: tuple[Limit, ...] = ()) -> Hold:
        """Reserve `amount_nano` of an account's balance (a user's, or "team:<id>")
        and of every budget in `limits`; raise `BudgetExceeded` or
        `InsufficientBalance` (and reserve nothing) if any of them cannot cover it."""
        now, windows = await self._windows(user_id, limits)
        # No await from here on: the checks and the reservation are one step.
        self._check(user_id, amount_nano, windows)
        self._held[user_id] = self._held.get(user_id, 0) + amount_nano
        at = now.astimezone(UTC).isoformat(timespec="microseconds")
        hold = Hold(user_id, amount_nano, limits=tuple((lm, w.since) for lm, w in windows), at=at)
        if windows:
            self.spending.reserve(hold.subjects, amount_nano)
        return hold

    async def check(self, user_id: str, amount_nano: int, limits: tuple[Limit, ...] = ()) -> None:
        """Raise as `hold` would, reserving nothing."""
        _, windows = await self._windows(user_id, limits)
        self._check(user_id, amount_nano, windows)

    async def _windows(
        self, user_id: str, limits: tuple[Limit, ...]
    ) -> tuple[datetime, list[tuple[Limit, Window]]]:
        """The time of the request, and each budget's window then, every one loaded."""
        await self._balance(user_id)
        now = self._clock()
        windows = [(limit, window(limit.window, now, self._zone)) for limit in limits]
        for limit, current in windows:
            await self.spending.load((limit.scope, limit.subject, current.kind, current.since))
        for index, (limit, current) in enumerate(windows):
            if self.spending.room(limit, current) is None:
                # A newer window began while these were read (another request read it
                # first, or the clock stepped back): the request counts in that one.
                since = self.spending.latest(limit.scope, limit.subject, current.kind)
                assert since  # a lifetime window ("") is never replaced
                windows[index] = (limit, window(current.kind, datetime.fromisoformat(since),
                                                self._zone))  # fmt: skip
        return now, windows

    def _check(self, user_id: str, amount_nano: int, windows: list[tuple[Limit, Window]]) -> None:
        for limit, current in windows:
            room = self.spending.room(limit, current)
            assert room is not None  # loaded by _windows, with no await since
            if amount_nano > room:
                raise BudgetExceeded(limit, room, amount_nano, current.resets_at)
        available = self._balances[user_id] - self._held.get(user_id, 0)
        if amount_nano > available:
            raise InsufficientBalance(available, amount_nano)

    async def budget_state(self, limit: Limit) -> tuple[int, int, Window]:
        """A budget now: what its window has been charged, what open holds
        reserve against it, and the window."""
        current = window(limit.window, self._clock(), self._zone)
        counter = (limit.scope, limit.subject, current.kind, current.since)
        await self.spending.load(counter)
        spent = self.spending.spent(counter)
        return spent or 0, self.spending.held(limit.scope, limit.subject), current

    async def credit(self, entry: LedgerEntry) -> int:
        """A top-up or an adjustment (any sign): applied once committed; returns
        the new balance. An adjustment may take the balance below zero."""
        await self._balance(entry.account)
        # Applied before its commit (and taken back if that fails), as a charge is:
        # a resync waits for the rows submitted before it reads, so it sees both.
        self._balances[entry.account] += entry.amount_nano
        self._moved(entry.account)
        try:
            await self._ledger.submit(entry)
        except BaseException:
            self._balances[entry.account] -= entry.amount_nano
            self._moved(entry.account)
            raise
        return self._balances[entry.account]

    def release(self, hold: Hold) -> None:
        """End a hold without a charge (the request failed everywhere)."""
        if hold.open:
            hold.open = False
            remaining = self._held.get(hold.user_id, 0) - hold.amount_nano
            if remaining:
                self._held[hold.user_id] = remaining
            else:
                self._held.pop(hold.user_id, None)
            if hold.limits:
                self.spending.unreserve(hold.subjects, hold.amount_nano)

    def _apply(self, hold: Hold, entry: LedgerEntry) -> asyncio.Future[None]:
        if not hold.open or not 0 <= -entry.amount_nano <= hold.amount_nano:
            # Capture never exceeds authorisation, and a hold is captured once.
            raise ValueError(
                f"charge {-entry.amount_nano} against a hold of {hold.amount_nano} "
                f"({'open' if hold.open else 'closed'}) for {entry.request_id}"
            )
        self.release(hold)
        account = entry.account
        self._balances[account] = self._balances.get(account, 0) + entry.amount_nano
        self._moved(account)
        if hold.limits:
            self.spending.add(hold.counters, -entry.amount_nano)  # a charge is negative
        return self._ledger.submit(entry)

    def _undo(self, hold: Hold, entry: LedgerEntry) -> None:
        """A charge whose ledger row was not written: as if it never happened."""
        self._balances[entry.account] -= entry.amount_nano
        self._moved(entry.account)
        if hold.limits:
            self.spending.add(hold.counters, entry.amount_nano)

    async def settle(self, hold: Hold, entry: LedgerEntry) -> int:
        """Charge `entry` in place of `hold`; returns the new balance once committed."""
        committed = self._apply(hold, entry)
        try:
            await committed
        except LedgerError:
            self._undo(hold, entry)
            raise
        self._charged(hold, entry)
        return self._balances[entry.account]

    def _charged(self, hold: Hold, entry: LedgerEntry) -> None:
        if self.on_charge is not None:
            try:
                self.on_charge(hold, entry)
            except Exception:  # an alert must never cost a request its answer
                log.exception("the charge hook failed for %s", entry.request_id)

    def settle_nowait(self, hold: Hold, entry: LedgerEntry) -> None:
        """Settle when nobody is left to answer (the client went away)."""
        committed = self._apply(hold, entry)

        def done(future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is not None:
                self._undo(hold, entry)
                log.error("ledger row %s not written: %s", entry.request_id, future.exception())
            elif not future.cancelled():
                self._charged(hold, entry)

        committed.add_done_callback(done)
