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

from billing.ledger_types import Ledger, LedgerEntry, LedgerError

log = logging.getLogger("gateway.meter")


class InsufficientBalance(Exception):
    def __init__(self, available_nano: int, needed_nano: int) -> None:
        super().__init__(f"available {available_nano} nano-USD, needed {needed_nano}")
        self.available_nano = available_nano
        self.needed_nano = needed_nano


class UnknownAccount(Exception):
    """The user has no balance row."""


class SpendCapReached(Exception):
    def __init__(self, available_nano: int, needed_nano: int) -> None:
        super().__init__(f"the key may spend {available_nano} nano-USD more, needed {needed_nano}")
        self.available_nano = available_nano
        self.needed_nano = needed_nano


@dataclass(slots=True)
class Hold:
    user_id: str
    amount_nano: int
    open: bool = True
    key_id: str = ""  # set when the key has a spend cap


class Meter:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._balances: dict[str, int] = {}
        self._held: dict[str, int] = {}
        self._loading: dict[str, asyncio.Future[int | None]] = {}
        # Keys with a spend cap: what each spent (from the ledger, then kept here)
        # and holds open against it.
        self._spent: dict[str, int] = {}
        self._key_held: dict[str, int] = {}
        # Each user's count of balance moves made here, so that a resync whose read
        # may have missed one (it moved while the read was out) keeps the local value.
        self._moves: dict[str, int] = {}

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

    async def hold(
        self, user_id: str, amount_nano: int, *, key_id: str = "", key_cap: int | None = None
    ) -> Hold:
        """Reserve `amount_nano` of the user's balance (and of the key's spend cap)."""
        balance = await self._balance(user_id)
        if key_cap is not None:
            spent = await self._key_spent(key_id)
            room = key_cap - spent - self._key_held.get(key_id, 0)
            if amount_nano > room:
                raise SpendCapReached(room, amount_nano)
        held = self._held.get(user_id, 0)
        if amount_nano > balance - held:
            raise InsufficientBalance(balance - held, amount_nano)
        self._held[user_id] = held + amount_nano
        if key_cap is None:
            return Hold(user_id, amount_nano)
        self._key_held[key_id] = self._key_held.get(key_id, 0) + amount_nano
        return Hold(user_id, amount_nano, key_id=key_id)

    async def key_room(self, key_id: str, cap: int | None) -> int | None:
        """What a key's spend cap still allows (after its open holds); None: no cap."""
        if cap is None:
            return None
        return cap - await self._key_spent(key_id) - self._key_held.get(key_id, 0)

    async def key_spent(self, key_id: str) -> tuple[int, int]:
        """What a key has spent, and what its open holds reserve."""
        return await self._key_spent(key_id), self._key_held.get(key_id, 0)

    async def _key_spent(self, key_id: str) -> int:
        spent = self._spent.get(key_id)
        if spent is None:
            loaded = await self._ledger.key_spent(key_id)
            spent = self._spent.setdefault(key_id, loaded)
        return spent

    async def credit(self, entry: LedgerEntry) -> int:
        """A top-up or an adjustment (any sign): applied once committed; returns
        the new balance. An adjustment may take the balance below zero."""
        await self._balance(entry.user_id)
        # Applied before its commit (and taken back if that fails), as a charge is:
        # a resync waits for the rows submitted before it reads, so it sees both.
        self._balances[entry.user_id] += entry.amount_nano
        self._moved(entry.user_id)
        try:
            await self._ledger.submit(entry)
        except BaseException:
            self._balances[entry.user_id] -= entry.amount_nano
            self._moved(entry.user_id)
            raise
        return self._balances[entry.user_id]

    def release(self, hold: Hold) -> None:
        """End a hold without a charge (the request failed everywhere)."""
        if hold.open:
            hold.open = False
            remaining = self._held.get(hold.user_id, 0) - hold.amount_nano
            if remaining:
                self._held[hold.user_id] = remaining
            else:
                self._held.pop(hold.user_id, None)
            if hold.key_id:
                self._key_held[hold.key_id] -= hold.amount_nano

    def _apply(self, hold: Hold, entry: LedgerEntry) -> asyncio.Future[None]:
        if not hold.open or not 0 <= -entry.amount_nano <= hold.amount_nano:
            # Capture never exceeds authorisation, and a hold is captured once.
            raise ValueError(
                f"charge {-entry.amount_nano} against a hold of {hold.amount_nano} "
                f"({'open' if hold.open else 'closed'}) for {entry.request_id}"
            )
        self.release(hold)
        self._balances[entry.user_id] = self._balances.get(entry.user_id, 0) + entry.amount_nano
        self._moved(entry.user_id)
        if hold.key_id and hold.key_id in self._spent:
            self._spent[hold.key_id] -= entry.amount_nano  # a charge is negative
        return self._ledger.submit(entry)

    def _undo(self, hold: Hold, entry: LedgerEntry) -> None:
        """A charge whose ledger row was not written: as if it never happened."""
        self._balances[entry.user_id] -= entry.amount_nano
        self._moved(entry.user_id)
        if hold.key_id and hold.key_id in self._spent:
            self._spent[hold.key_id] += entry.amount_nano

    async def settle(self, hold: Hold, entry: LedgerEntry) -> int:
        """Charge `entry` in place of `hold`; returns the new balance once committed."""
        committed = self._apply(hold, entry)
        try:
            await committed
        except LedgerError:
            self._undo(hold, entry)
            raise
        return self._balances[entry.user_id]

    def settle_nowait(self, hold: Hold, entry: LedgerEntry) -> None:
        """Settle when nobody is left to answer (the client went away)."""
        committed = self._apply(hold, entry)

        def done(future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is not None:
                self._undo(hold, entry)
                log.error("ledger row %s not written: %s", entry.request_id, future.exception())

        committed.add_done_callback(done)
