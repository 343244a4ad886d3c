"""Budget windows over a real SQLite ledger with an injected clock: a daily
window rolls over at midnight in the configured zone, without sleeping and
without a reset job; a restarted process finds the window's spend in the
ledger; a refusal reserves nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing.ledger_types import LedgerEntry
from billing.meter import Meter
from billing.spending import BudgetExceeded, Limit
from billing.sqlite_ledger import SqliteLedger
from billing.windows import window
from config_store.budgets import Budget
from config_store.schema import Catalogue
from config_store.snapshot import Snapshot
from gateway.alerts.thresholds import Thresholds
from gateway.alerts.webhook import Alert
from tests.test_ledger import fresh_db

ZONE = ZoneInfo("America/New_York")  # UTC-5 in December
DAILY = (Limit("u1-daily", "user", "u1", "daily", 100),)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def charge(request_id: str, amount: int, at: str) -> LedgerEntry:
    return LedgerEntry(request_id, "u1", "charge", -amount, at)


async def test_a_daily_window_rolls_over_at_midnight_in_the_zone(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    ledger.submit(LedgerEntry("topup", "u1", "topup", 10_000, "2026-12-01T00:00:00+00:00"))
    clock = Clock(datetime(2026, 12, 8, 4, 59, 0, tzinfo=UTC))  # 23:59 on the 7th in New York
    meter = Meter(ledger, zone=ZONE, clock=clock)
    try:
        hold = await meter.hold("u1", 100, DAILY)
        assert hold.at == "2026-12-08T04:59:00.000000+00:00"
        await meter.settle(hold, charge("r1", 100, hold.at))
        with pytest.raises(BudgetExceeded) as refused:
            await meter.hold("u1", 1, DAILY)
        assert refused.value.available_nano == 0
        assert refused.value.resets_at == "2026-12-08T05:00:00.000000+00:00"  # midnight there
        assert meter.open_holds() == {}  # the refusal reserved nothing

        clock.now = datetime(2026, 12, 8, 4, 59, 59, 999999, tzinfo=UTC)  # still the 7th
        with pytest.raises(BudgetExceeded):
            await meter.hold("u1", 1, DAILY)
        # A process started now finds the day's spend in the ledger.
        restarted = Meter(ledger, zone=ZONE, clock=clock)
        with pytest.raises(BudgetExceeded):
            await restarted.hold("u1", 1, DAILY)

        clock.now = datetime(2026, 12, 8, 5, 0, 0, tzinfo=UTC)  # midnight: the 8th begins
        for each in (meter, restarted):
            fresh = await each.hold("u1", 100, DAILY)
            each.release(fresh)
        spent, held, current = await meter.budget_state(DAILY[0])
        assert (spent, held, current.since) == (0, 0, "2026-12-08T05:00:00.000000+00:00")
        # In UTC the day would have begun five hours earlier: the zone decides.
        utc = Meter(ledger, zone=ZoneInfo("UTC"), clock=clock)
        with pytest.raises(BudgetExceeded):
            await utc.hold("u1", 1, DAILY)
    finally:
        await ledger.close()


@pytest.mark.parametrize(
    ("kind", "now", "since", "resets"),
    [
        ("daily", "2026-03-08T12:00:00", "2026-03-08T05:00:00", "2026-03-09T04:00:00"),  # DST
        ("weekly", "2026-12-13T23:00:00", "2026-12-07T05:00:00", "2026-12-14T05:00:00"),
        ("monthly", "2026-12-01T04:59:59", "2026-11-01T04:00:00", "2026-12-01T05:00:00"),
        ("monthly", "2026-12-31T12:00:00", "2026-12-01T05:00:00", "2027-01-01T05:00:00"),
    ],
)
def test_windows_follow_the_calendar_of_the_zone(kind: str, now: str, since: str, resets: str):
    found = window(kind, datetime.fromisoformat(now).replace(tzinfo=UTC), ZONE)
    assert (found.since, found.resets_at) == (f"{since}.000000+00:00", f"{resets}.000000+00:00")


def test_a_lifetime_window_never_resets():
    found = window("lifetime", datetime(2026, 1, 1, tzinfo=UTC), ZONE)
    assert (found.since, found.resets_at) == ("", None)


async def test_a_threshold_fires_once_per_window_and_again_in_the_next(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    ledger.submit(LedgerEntry("topup", "u1", "topup", 10_000, "2026-12-01T00:00:00+00:00"))
    clock = Clock(datetime(2026, 12, 8, 4, 0, tzinfo=UTC))  # 23:00 on the 7th in New York
    meter = Meter(ledger, zone=ZONE, clock=clock)
    budget = Budget("u1-daily", "user", "u1", "daily", 100, alerts=(50, 90))
    snapshot = Snapshot.of(Catalogue(budgets=(budget,)), "test", clock.now)
    fired: list[Alert] = []
    meter.on_charge = Thresholds(meter, lambda: snapshot, fired.append).after_charge
    limits = (Limit(budget.id, "user", "u1", "daily", 100),)

    async def spend(request_id: str, amount: int) -> None:
        hold = await meter.hold("u1", amount, limits)
        await meter.settle(hold, charge(request_id, amount, hold.at))

    try:
        await spend("r1", 40)
        assert fired == []
        await spend("r2", 20)  # 60 %: the 50 % threshold
        await spend("r3", 5)  # 65 %: nothing new
        assert [a.payload["threshold_percent"] for a in fired] == [50]
        assert fired[0].key == "budget:u1-daily:u1:2026-12-07T05:00:00.000000+00:00:50"
        assert fired[0].payload["resets_at"] == "2026-12-08T05:00:00.000000+00:00"
        clock.now = datetime(2026, 12, 8, 5, 30, tzinfo=UTC)  # the 8th: a new window
        await spend("r4", 55)
        assert [a.key.rsplit(":", 1)[1] for a in fired] == ["50", "50"]
        assert fired[1].key != fired[0].key
    finally:
        await ledger.close()


async def test_a_clock_that_steps_back_counts_in_the_newest_window(tmp_path: Path):
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path)
    await ledger.start()
    ledger.submit(LedgerEntry("topup", "u1", "topup", 10_000, "2026-12-01T00:00:00+00:00"))
    clock = Clock(datetime(2026, 12, 8, 5, 0, 1, tzinfo=UTC))  # just after midnight there
    meter = Meter(ledger, zone=ZONE, clock=clock)
    try:
        first = await meter.hold("u1", 60, DAILY)
        clock.now = datetime(2026, 12, 8, 4, 59, 59, tzinfo=UTC)  # back into the 7th
        with pytest.raises(BudgetExceeded) as refused:  # the 8th's 60 held: 40 left
            await meter.hold("u1", 41, DAILY)
        assert refused.value.resets_at == "2026-12-09T05:00:00.000000+00:00"
        meter.release(first)
    finally:
        await ledger.close()
