"""Crash safety of the Firestore ledger: a killed instance loses no row and a
replayed outbox never charges twice."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from billing.firestore_ledger import FirestoreLedger
from billing.ledger_types import LedgerEntry
from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import documents, firestore_env, free_port, new_project

START = 100 * 10**9


def start_gateway(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.ops.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the gateway did not start")


def test_a_killed_instance_loses_no_row_and_doubles_none(
    firestore_host: str, tmp_path: Path, fake_openai: FakeOpenAI, tiktoken_dir: Path
):
    project = new_project()
    env = {
        **firestore_env(firestore_host, project),
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_ACCESS_LOG": "0",
        "GATEWAY_SYNC_CRON": "off",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-fake-upstream",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
        "GATEWAY_LEDGER_FLUSH_SECONDS": "30",  # rows wait in the outbox when the kill comes
        "GATEWAY_FIRESTORE_STALE_SECONDS": "60",  # and the instance serves meanwhile
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "gateway.ops.cli", "seed"], env={**os.environ, **env}, check=False
    )
    assert seeded.returncode == 0
    key = (tmp_path / "data" / "demo_api_key").read_text().strip()
    port = free_port()
    gateway = start_gateway(env, port)
    fake_openai.delay = 0.02

    def ask(i: int) -> str | None:
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "model": "gpt-4o-mini-2024-07-18",
                    "messages": [{"role": "user", "content": f"request {i}"}],
                    "max_tokens": 10,
                },
                timeout=10,
            )
        except httpx.HTTPError:
            return None
        return response.headers["x-request-id"] if response.status_code == 200 else None

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(ask, i) for i in range(300)]
        while sum(f.done() for f in futures) < 100:
            time.sleep(0.01)
        gateway.send_signal(signal.SIGKILL)  # mid-load, no goodbye
        gateway.wait()
        served = {f.result() for f in futures} - {None}
    assert len(served) >= 100
    with sqlite3.connect(tmp_path / "data" / "ledger-outbox.db") as outbox:
        waiting = outbox.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    assert waiting >= len(served)  # nothing was shipped yet: all of it is in the outbox
    assert documents(firestore_host, project, "ledger").keys() == {"seed:demo:opening-balance"}

    restarted = start_gateway({**env, "GATEWAY_LEDGER_FLUSH_SECONDS": "0.2"}, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            with sqlite3.connect(tmp_path / "data" / "ledger-outbox.db") as outbox:
                if outbox.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 0:
                    break
            assert time.monotonic() < deadline, "the outbox did not drain"
            time.sleep(0.1)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
    rows = {
        k: v
        for k, v in documents(firestore_host, project, "ledger").items()
        if v["kind"] == "charge"
    }
    assert served <= set(rows)  # no row of a served request is missing
    assert len(rows) == waiting  # every row of the outbox, once
    charged = sum(-row["amount_nano"] for row in rows.values())
    balances = documents(firestore_host, project, "balances")
    assert balances["demo"]["balance_nano"] == START - charged  # none counted twice


def test_a_replayed_outbox_charges_once(firestore_host: str, tmp_path: Path):
    project = new_project()
    outbox = tmp_path / "outbox.db"

    async def run() -> tuple[int | None, int | None]:
        ledger = FirestoreLedger(project, firestore_host, outbox, flush_seconds=60)
        await ledger.start()
        try:
            for i in range(5):
                entry = LedgerEntry(
                    request_id=f"r{i}",
                    user_id="u1",
                    kind="charge",
                    amount_nano=-(i + 1) * 1000,
                    created_at=datetime.now(UTC).isoformat(),
                )
                await ledger.submit(entry)
            # Commit to Firestore, then "crash" before the outbox rows are deleted:
            # put them back, as a restart would find them.
            with sqlite3.connect(outbox) as db:
                saved = db.execute("SELECT * FROM ledger").fetchall()
            await ledger.drained()
            first = await ledger.balance("u1")
            with sqlite3.connect(outbox) as db:
                marks = ", ".join("?" * len(saved[0]))
                db.executemany(f"INSERT INTO ledger VALUES ({marks})", saved)
            await ledger.drained()
            return first, await ledger.balance("u1")
        finally:
            await ledger.close()

    first, second = asyncio.run(run())
    assert first == second == -15_000
    assert len(documents(firestore_host, project, "ledger")) == 5
