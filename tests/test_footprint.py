"""What a SQLite deployment loads: nothing of Firestore, gRPC or Google's client
(some 45 MB), nor `cryptography` without a secret key, nor aiohttp (about 9 MB:
the gateway's own HTTP client calls providers and the alert webhook); the
figures themselves are the benchmarks' (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("google", "grpc", "cryptography", "aiohttp")

SERVE = """
import asyncio, json, sys
from gateway.app import create_app
from gateway.ops import cli  # what `gateway serve` imports
from gateway.services import running
from gateway.settings import Settings
from gateway.ops.seed import seed

async def main():
    settings = Settings.from_env({"GATEWAY_DATA_DIR": sys.argv[1], "GATEWAY_SYNC_CRON": "off"})
    await seed(settings)
    async with running(settings, admin_key="k" * 32, schedule=False):
        pass

asyncio.run(main())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))))
"""


def test_a_sqlite_gateway_loads_neither_firestore_grpc_nor_aiohttp(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-c", SERVE, str(tmp_path), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
