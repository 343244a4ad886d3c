"""The WAL stays bounded under continuous load: small commits, one after the
other, while a reader runs reports, never let it grow past the README's bound.
(The soak variants, left out of `make test`: fsync at every commit, and
20,000 requests through `gateway serve`.)"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.reports import LedgerReports
from billing.sqlite_ledger import SqliteLedger
from billing.wal import WAL_BOUND_BYTES, WalPolicy
from tests.firestore_emulator import free_port
from tests.test_firestore_crash import start_gateway
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


@pytest.mark.parametrize("mode", ["NORMAL", "FULL"])
async def test_rows_commit_while_a_checkpoint_copies_the_wal(tmp_path: Path, mode: str):
    """The checkpoint's first phase (PASSIVE, on its own thread) does not stop
    the writer: with that phase held, rows still commit; once it ends, the
    writer restarts the WAL by itself, with no row needed to wake it."""
    path = tmp_path / "ledger.db"
    await fresh_db(path)
    ledger = SqliteLedger(path, synchronous=mode, checkpoint_bytes=64 * 1024)
    wal = WalPolicy(path).path
    await ledger.start()
    held, started = threading.Event(), threading.Event()
    copy = ledger._conn.backfill

    def slow_backfill() -> None:
        started.set()
        held.wait(30)
        copy()

    ledger._conn.backfill = slow_backfill  # type: ignore[method-assign]
    try:
        written = 0
        while not started.is_set():  # until the WAL is due
            await ledger.submit(charge(f"a{written}", 1))
            written += 1
            assert written < 5_000, "the WAL never became due"
        grown = wal.stat().st_size
        for i in range(100):  # the writer goes on meanwhile
            await asyncio.wait_for(ledger.submit(charge(f"b{i}", 1)), 10)
        assert ledger.health().checkpoints == 0
        assert wal.stat().st_size > grown
        held.set()
        for _ in range(1000):  # the RESTART follows, with nothing more submitted
            if ledger.health().checkpoints:
                break
            await asyncio.sleep(0.01)
        assert ledger.health().checkpoints == 1
        assert await ledger.balance("u1") == -(written + 100)
        await ledger.submit(charge("c", 1))  # the next commit starts the WAL over
        assert wal.stat().st_size < grown
    finally:
        held.set()
        await ledger.close()


@pytest.mark.soak
async def test_the_wal_stays_under_its_bound_with_fsync_at_every_commit(tmp_path: Path):
    sizes = await write_under_load(tmp_path / "ledger.db", "FULL")
    assert max(sizes) <= WAL_BOUND_BYTES


@pytest.mark.soak
def test_the_wal_stays_under_its_bound_through_the_gateway(tmp_path: Path, tiktoken_dir: Path):
    """20,000 requests to the mock model through `gateway serve`, sixteen at a
    time, with an admin reading usage reports all along."""
    data = tmp_path / "data"
    env = {
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_ACCESS_LOG": "0",
        "GATEWAY_SYNC_CRON": "off",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "gateway.ops.cli", "seed"], env={**os.environ, **env}, check=False
    )
    assert seeded.returncode == 0
    key = (data / "demo_api_key").read_text().strip()
    admin = {"Authorization": f"Bearer {(data / 'admin_key').read_text().strip()}"}
    wal = WalPolicy(data / "gateway.db").path
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = start_gateway(env, port)
    sizes: list[int] = []
    running = True

    def sample() -> None:
        while running:
            with contextlib.suppress(OSError):
                sizes.append(wal.stat().st_size)
            time.sleep(0.005)

    async def drive() -> tuple[int, int]:
        async with httpx.AsyncClient(timeout=60) as client:
            numbers = iter(range(ROWS))
            served = reports = 0

            async def ask() -> None:
                nonlocal served
                for i in numbers:
                    response = await client.post(
                        f"{base}/v1/chat/completions",
                        headers={"Authorization": f"Bearer {key}"},
                        json={"model": "mock-1", "messages": [{"role": "user", "content": f"{i}"}]},
                    )
                    assert response.status_code == 200, response.text
                    served += 1

            async def report() -> None:
                nonlocal reports
                while served < ROWS:
                    usage = await client.get(f"{base}/admin/usage?group_by=day", headers=admin)
                    assert usage.status_code == 200
                    reports += 1
                    await asyncio.sleep(0.05)

            await asyncio.gather(report(), *(ask() for _ in range(16)))
            return served, reports

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        began = time.monotonic()
        served, reports = asyncio.run(drive())
        seconds = time.monotonic() - began
        ledger = httpx.get(f"{base}/health", timeout=30).json()["ledger"]
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        running = False
        sampler.join()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
    assert served == ROWS and reports > 0
    assert max(sizes) <= WAL_BOUND_BYTES
    waits = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "gateway_ledger_checkpoint_seconds"
        for sample in family.samples
    }
    count = waits["gateway_ledger_checkpoint_seconds_count"]
    print(
        f"{served} requests in {seconds:.0f} s ({served / seconds:.0f}/s), {reports} reports: "
        f"WAL at most {max(sizes) / 2**20:.1f} MiB, {ledger['wal_bytes'] / 2**20:.1f} MiB at the "
        f"end, {ledger['batches']} commits, {count:.0f} checkpoints of "
        f"{1000 * waits['gateway_ledger_checkpoint_seconds_sum'] / max(count, 1):.0f} ms on average"
    )
