"""The WAL stays bounded under continuous load: small commits, one after the
other, while a reader runs reports, never let it grow past the README's bound."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from billing.ledger import SqliteLedger
from billing.reports import LedgerReports
from billing.wal import WAL_BOUND_BYTES, WalPolicy
from tests.test_ledger import charge, fresh_db

ROWS = 20_000


async def write_under_load(path: Path, mode: str, writers: int = 4) -> list[int]:
    """ROWS rows, each writer waiting for its row's commit before the next (so a
    commit holds one to `writers` rows, as under real load), with a reader
    running reports all along. Returns the WAL's size after every commit."""
    await fresh_db(path)
    ledger = SqliteLedger(path, synchronous=mode)
    wal = WalPolicy(path).path
    sizes: list[int] = []
    ledger.on_batch = lambda rows, seconds: sizes.append(wal.stat().st_size)
    reports = LedgerReports(path)
    writing = True
    reads = 0

    async def read() -> None:
        nonlocal reads
        while writing:
            await reports.usage(["user"], None, None)
            await reports.page(user_id=None, kind="charge", after=None, limit=100)
            reads += 1

    async def write(first: int) -> None:
        for i in range(first, ROWS, writers):
            await ledger.submit(charge(f"r{i}", 1))

    await ledger.start()
    try:
        reader = asyncio.ensure_future(read())
        await asyncio.gather(*(write(w) for w in range(writers)))
        writing = False
        await reader
        assert reads > 0
        assert await ledger.balance("u1") == -ROWS
        assert ledger.health().checkpoints >= 1
    finally:
        await ledger.close()
    return sizes


async def test_the_wal_stays_under_its_bound_under_small_commits(tmp_path: Path):
    sizes = await write_under_load(tmp_path / "ledger.db", "NORMAL")
    assert len(sizes) >= ROWS // 4
    assert max(sizes) <= WAL_BOUND_BYTES
    # It restarted again and again (without restarts it only grows).
    restarts = sum(later < earlier for earlier, later in itertools.pairwise(sizes))
    assert restarts >= 3


@pytest.mark.soak
async def test_the_wal_stays_under_its_bound_with_fsync_at_every_commit(tmp_path: Path):
    sizes = await write_under_load(tmp_path / "ledger.db", "FULL")
    assert max(sizes) <= WAL_BOUND_BYTES
