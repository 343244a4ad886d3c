"""Crash safety of the SQLite ledger: `gateway serve` killed (SIGKILL) in the
middle of a load of streamed and plain requests loses no row of a response
that was delivered, doubles none, and leaves the books clean once restarted
(once in `make test`; three kills in a row under the soak marker)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import free_port
from tests.test_firestore_crash import start_gateway

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9  # the seeded demo balance
KILL_AFTER = 80  # answers received before the kill, in each round


@dataclass
class Round:
    delivered: int  # responses received in full
    rows: int  # charges in the ledger after the restart (all rounds so far)
    charged_not_delivered: int  # rows of responses the kill cut off (allowed)


def ask(client: httpx.Client, port: int, key: str, i: int) -> str | None:
    """One request, streamed or not; its request id if the whole response arrived."""
    body = {
        "model": MINI,
        "messages": [{"role": "user", "content": f"request {i} says a few words here"}],
        "max_tokens": 20,
        "stream": i % 2 == 0,
    }
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        if not body["stream"]:
            response = client.post(url, headers=headers, json=body)
            if response.status_code != 200 or "choices" not in response.json():
                return None
            return response.headers["x-request-id"]
        with client.stream("POST", url, headers=headers, json=body) as response:
            if response.status_code != 200:
                return None
            events = [line for line in response.iter_lines() if line.startswith("data: ")]
            if events[-1:] != ["data: [DONE]"]:
                return None
            if any("error" in json.loads(event[6:]) for event in events[:-1]):
                return None
            return response.headers["x-request-id"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None  # cut off by the kill


def load_then_kill(gateway: subprocess.Popen[bytes], port: int, key: str) -> set[str]:
    """Eight clients ask one request after another; the gateway is killed once
    KILL_AFTER answers are in, with requests of both kinds in flight."""
    served: set[str] = set()
    answered = itertools.count(1)
    killed = threading.Event()
    numbers = itertools.count()

    def client_loop(client: httpx.Client) -> None:
        while not killed.is_set():
            request_id = ask(client, port, key, next(numbers))
            if request_id is not None:
                served.add(request_id)
            if next(answered) == KILL_AFTER:  # exactly one client sees this number
                killed.set()
                gateway.send_signal(signal.SIGKILL)  # mid-load, no goodbye

    with httpx.Client(timeout=10) as client:
        clients = [threading.Thread(target=client_loop, args=(client,)) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)
    gateway.wait(timeout=30)
    return served


def kill_and_restart(rounds: int, tmp_path: Path, fake: FakeOpenAI, tiktoken_dir: Path) -> None:
    data = tmp_path / "data"
    env = {
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_ACCESS_LOG": "0",
        "GATEWAY_SYNC_CRON": "off",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-fake-upstream",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "gateway.ops.cli", "seed"], env={**os.environ, **env}, check=False
    )
    assert seeded.returncode == 0
    key = (data / "demo_api_key").read_text().strip()
    admin_key = (data / "admin_key").read_text().strip()
    fake.delay = 0.01
    fake.stream_chunk_delay = 0.005  # streams are in flight when the kill comes
    port = free_port()
    gateway = start_gateway(env, port)
    delivered: set[str] = set()
    outcomes: list[Round] = []
    try:
        for _ in range(rounds):
            served = load_then_kill(gateway, port, key)
            assert len(served) >= KILL_AFTER // 2
            delivered |= served
            gateway = start_gateway(env, port)  # replays nothing: the WAL is the record
            with sqlite3.connect(data / "gateway.db") as db:
                charges = [
                    row[0]
                    for row in db.execute("SELECT request_id FROM ledger WHERE kind = 'charge'")
                ]
                (balance,) = db.execute(
                    "SELECT balance_nano FROM users WHERE id = 'demo'"
                ).fetchone()
                (charged,) = db.execute(
                    "SELECT -COALESCE(SUM(amount_nano), 0) FROM ledger WHERE kind = 'charge'"
                ).fetchone()
            assert len(charges) == len(set(charges))  # no row twice
            assert delivered <= set(charges)  # no delivered response without its row
            assert balance == START - charged  # the balance is its ledger
            outcomes.append(Round(len(served), len(charges), len(set(charges) - delivered)))
            reconciled = httpx.get(
                f"http://127.0.0.1:{port}/admin/reconcile",
                headers={"Authorization": f"Bearer {admin_key}"},
                timeout=30,
            ).json()
            assert reconciled["clean"] is True, reconciled
            assert reconciled["open_holds_nano"] == {}  # no hold survives
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
    print("kill -9 rounds (delivered, charge rows so far, charged but cut off):", outcomes)


def test_a_killed_gateway_loses_no_delivered_row_and_doubles_none(
    tmp_path: Path, fake_openai: FakeOpenAI, tiktoken_dir: Path
):
    kill_and_restart(1, tmp_path, fake_openai, tiktoken_dir)


@pytest.mark.soak
def test_three_kills_in_a_row(tmp_path: Path, fake_openai: FakeOpenAI, tiktoken_dir: Path):
    kill_and_restart(3, tmp_path, fake_openai, tiktoken_dir)
