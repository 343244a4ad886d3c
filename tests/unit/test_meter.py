"""`Meter` over an in-memory ledger: holds, capture within a hold, release, spend
caps, and a ledger write that fails."""

from __future__ import annotations

import asyncio
import logging

import pytest

from billing.ledger_types import LedgerEntry, LedgerError
from billing.meter import InsufficientBalance, Meter, UnknownAccount
from billing.spending import BudgetExceeded, Limit


class MemoryLedger:
    """What Meter uses of a ledger. A submitted row commits at once, fails with
    `failing`, or waits for the test when `hold_commits` is set."""

    def __init__(self, balances: dict[str, int], spent: dict[str, int] | None = None) -> None:
        self.balances = dict(balances)
        self.spent_before = dict(spent or {})
        self.rows: list[LedgerEntry] = []
        self.reads: list[str] = []
        self.failing: LedgerError | None = None
        self.hold_commits = False
        self.pending: list[asyncio.Future[None]] = []

    async def balance(self, user_id: str) -> int | None:
        self.reads.append(user_id)
        await asyncio.sleep(0)  # a real read lets others run
        return self.balances.get(user_id)

    async def spent(self, scope: str, subject: str, since: str) -> int:
        self.reads.append(f"{scope}:{subject}")
        return self.spent_before.get(subject, 0)

    async def committed(self) -> None:
        return None

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.hold_commits:
            self.pending.append(future)
        elif self.failing is not None:
            future.set_exception(self.failing)
        else:
            self.rows.append(entry)
            self.balances[entry.user_id] += entry.amount_nano
            future.set_result(None)
        return future


def charge(nano: int, user: str = "u", key_id: str = "", request: str = "r1") -> LedgerEntry:
    return LedgerEntry(request, user, "charge", -nano, "2025-01-01T00:00:00Z", key_id=key_id)


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger({"u": 1000, "v": 50})


@pytest.fixture
def meter(ledger: MemoryLedger) -> Meter:
    return Meter(ledger)  # type: ignore[arg-type]


async def test_holds_take_from_what_is_available_up_to_all_of_it(meter: Meter):
    first = await meter.hold("u", 600)
    assert await meter.available("u") == 400 and await meter.balance("u") == 1000
    second = await meter.hold("u", 400)
    assert (first.amount_nano, second.amount_nano, await meter.available("u")) == (600, 400, 0)
    assert meter.open_holds() == {"u": 1000}


async def test_a_hold_beyond_what_is_available_is_refused_with_the_figures(meter: Meter):
    await meter.hold("u", 600)
    with pytest.raises(InsufficientBalance) as caught:
        await meter.hold("u", 401)
    assert (caught.value.available_nano, caught.value.needed_nano) == (400, 401)
    assert meter.open_holds() == {"u": 600}


async def test_an_unknown_user_has_no_account(meter: Meter):
    with pytest.raises(UnknownAccount):
        await meter.hold("nobody", 1)
    assert meter.cached_balance("nobody") is None


async def test_release_gives_the_hold_back_once(meter: Meter):
    hold = await meter.hold("u", 600)
    other = await meter.hold("u", 100)
    meter.release(hold)
    meter.release(hold)
    assert await meter.available("u") == 900 and not hold.open
    meter.release(other)
    assert meter.open_holds() == {}


async def test_settlement_replaces_the_hold_with_the_charge(meter: Meter, ledger: MemoryLedger):
    hold = await meter.hold("u", 600)
    assert await meter.settle(hold, charge(250)) == 750
    assert (await meter.available("u"), meter.open_holds(), hold.open) == (750, {}, False)
    assert [row.amount_nano for row in ledger.rows] == [-250]


async def test_a_charge_of_the_whole_hold_or_nothing_is_allowed(meter: Meter):
    whole = await meter.hold("u", 300)
    assert await meter.settle(whole, charge(300)) == 700
    nothing = await meter.hold("u", 300)
    assert await meter.settle(nothing, charge(0, request="r2")) == 700


@pytest.mark.parametrize("nano", [601, -1])
async def test_a_capture_above_the_hold_or_a_credit_is_refused_and_moves_nothing(
    meter: Meter, ledger: MemoryLedger, nano: int
):
    hold = await meter.hold("u", 600)
    with pytest.raises(ValueError, match=f"charge {nano} against a hold of 600 \\(open\\)"):
        await meter.settle(hold, charge(nano))
    assert hold.open and meter.open_holds() == {"u": 600}
    assert await meter.balance("u") == 1000 and ledger.rows == []


async def test_a_hold_is_captured_once(meter: Meter, ledger: MemoryLedger):
    hold = await meter.hold("u", 600)
    await meter.settle(hold, charge(100))
    with pytest.raises(ValueError, match="\\(closed\\)"):
        await meter.settle(hold, charge(100, request="r2"))
    released = await meter.hold("u", 10)
    meter.release(released)
    with pytest.raises(ValueError, match="\\(closed\\)"):
        meter.settle_nowait(released, charge(1, request="r3"))
    assert await meter.balance("u") == 900 and len(ledger.rows) == 1


async def test_a_charge_the_ledger_did_not_write_is_undone(meter: Meter, ledger: MemoryLedger):
    hold = await meter.hold("u", 600)
    ledger.failing = LedgerError("disk full")
    with pytest.raises(LedgerError):
        await meter.settle(hold, charge(250))
    assert await meter.balance("u") == 1000 and await meter.available("u") == 1000


async def test_the_next_hold_sees_a_charge_before_it_commits(meter: Meter, ledger: MemoryLedger):
    hold = await meter.hold("u", 600)
    ledger.hold_commits = True
    settling = asyncio.create_task(meter.settle(hold, charge(600)))
    await asyncio.sleep(0)
    with pytest.raises(InsufficientBalance) as caught:
        await meter.hold("u", 401)
    assert caught.value.available_nano == 400
    ledger.pending[0].set_result(None)
    assert await settling == 400


async def test_settle_nowait_undoes_a_failed_write_later(
    meter: Meter, ledger: MemoryLedger, caplog: pytest.LogCaptureFixture
):
    hold = await meter.hold("u", 600)
    ledger.hold_commits = True
    meter.settle_nowait(hold, charge(250))
    assert await meter.balance("u") == 750
    ledger.pending[0].set_exception(LedgerError("gone"))
    with caplog.at_level(logging.ERROR, logger="gateway.meter"):
        await asyncio.sleep(0)
    assert await meter.balance("u") == 1000
    assert "ledger row r1 not written: gone" in caplog.text


async def test_a_keys_spend_cap_bounds_its_holds(ledger: MemoryLedger):
    ledger.spent_before["k"] = 700
    meter = Meter(ledger)  # type: ignore[arg-type]
    cap = (Limit("k:spend_cap", "key", "k", "lifetime", 1000),)

    async def room() -> int:
        spent, held, _ = await meter.budget_state(cap[0])
        return 1000 - spent - held

    assert await room() == 300
    hold = await meter.hold("u", 200, cap)
    assert hold.subjects == (("key", "k"),) and await room() == 100
    with pytest.raises(BudgetExceeded) as caught:
        await meter.hold("u", 101, cap)
    assert (caught.value.available_nano, caught.value.needed_nano) == (100, 101)
    assert caught.value.resets_at is None  # a lifetime budget never resets
    assert await meter.available("u") == 800  # the refused hold took nothing
    await meter.settle(hold, charge(150, key_id="k"))
    assert await room() == 150
    other = await meter.hold("u", 150, cap)
    meter.release(other)
    assert await room() == 150
    assert ledger.reads.count("key:k") == 1  # read once, then kept


async def test_a_key_without_a_cap_is_not_tracked(meter: Meter, ledger: MemoryLedger):
    hold = await meter.hold("u", 200)
    assert hold.subjects == () and "key:k" not in ledger.reads


async def test_the_first_requests_of_a_user_share_one_read(meter: Meter, ledger: MemoryLedger):
    holds = await asyncio.gather(*(meter.hold("u", 100) for _ in range(5)))
    assert len(holds) == 5 and ledger.reads == ["u"]
    assert await meter.available("u") == 500


async def test_credit_applies_once_committed_and_is_taken_back_if_not(
    meter: Meter, ledger: MemoryLedger
):
    topup = LedgerEntry("t1", "v", "topup", 25, "2025-01-01T00:00:00Z")
    assert await meter.credit(topup) == 75
    ledger.failing = LedgerError("locked")
    with pytest.raises(LedgerError):
        await meter.credit(LedgerEntry("t2", "v", "adjust", -100, "2025-01-01T00:00:00Z"))
    assert await meter.balance("v") == 75


async def test_resync_reads_fresh_balances_but_keeps_one_that_moved_meanwhile(meter: Meter):
    await meter.hold("u", 1)
    await meter.balance("v")

    async def read(users: list[str]) -> dict[str, int | None]:
        assert sorted(users) == ["u", "v"]
        await meter.credit(LedgerEntry("t", "v", "topup", 5, "2025-01-01T00:00:00Z"))
        return {"u": 2000, "v": 0}

    await meter.resync(read)
    assert (await meter.balance("u"), await meter.balance("v")) == (2000, 55)
