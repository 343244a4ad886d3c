"""Runs a real gateway (uvicorn on a loopback port) in a background thread.

Each `GatewayServer` has its own data directory and SQLite file, seeded like
`gateway seed` does, so tests are isolated; the tokenizer is loaded once per
session and shared.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from billing.tokens import TokenCounter
from gateway.app import create_app
from gateway.edge.connections import ConnectionGuard, GatewayConfig
from gateway.edge.server import uvicorn_config
from gateway.ops.seed import admin_key, read_secret, seed
from gateway.proxy.auth import hash_key, key_prefix, new_key
from gateway.settings import Settings


def expected_cost_nano(
    prompt: int,
    completion: int,
    input_per_million: str,
    output_per_million: str,
    markup_percent: str = "10",
    cached: int = 0,
    cached_per_million: str | None = None,
) -> int:
    """The cost a test expects, computed here independently of billing.pricing."""
    usd = (
        Decimal(prompt - cached) * Decimal(input_per_million)
        + Decimal(cached) * Decimal(cached_per_million or input_per_million)
        + Decimal(completion) * Decimal(output_per_million)
    ) / Decimal(1_000_000)
    usd = usd * (Decimal(100) + Decimal(markup_percent)) / Decimal(100)
    return int((usd * Decimal(10**9)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def o200k() -> Any:
    """tiktoken's o200k_base, for tests that count tokens themselves. Call it
    inside a test that uses the gateway fixtures: the session's cache directory
    (with the bundled encodings) is set up by then."""
    import tiktoken

    return tiktoken.get_encoding("o200k_base")


def usd_text(nano: int) -> str:
    return f"{Decimal(nano) / Decimal(10**9):.9f}"


def body_cost(usage: Any) -> str:
    """A body's `usage.cost` (a JSON number, read by the client as a float: its
    repr gives back the digits sent) as the nine-place string of the headers."""
    assert usage is not None and "cost_details" in usage
    value = usage["cost"]
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return f"{Decimal(repr(value)):.9f}"


def in_own_thread(work: Any) -> None:
    """Run `work` on a thread of its own: a thread with a running event loop (a
    browser test's, under Playwright's sync API) cannot call asyncio.run."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


class GatewayServer:
    def __init__(
        self,
        data_dir: Path,
        counter: TokenCounter,
        env: Mapping[str, str] | None = None,
        *,
        do_seed: bool = True,
    ) -> None:
        environ = {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_ACCESS_LOG": "0",
            "GATEWAY_SYNC_CRON": "off",  # no discovery run in the middle of a test
            **(env or {}),
        }
        self.settings = Settings.from_env(environ)
        self.counter = counter
        self.data_dir = data_dir
        if do_seed:
            in_own_thread(lambda: asyncio.run(seed(self.settings)))
        key = admin_key(self.settings, create=True)
        assert key is not None
        self.admin_key = key
        self.demo_key = read_secret(self.settings.demo_key_file) or ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def db(self) -> Path:
        return self.settings.database

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = create_app(self.settings, admin_key=self.admin_key, counter=self.counter)
        config = uvicorn_config(app, self.settings, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        for _ in range(500):
            if server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("the gateway did not start")
            threading.Event().wait(0.01)
        raise RuntimeError("the gateway did not start in 5 s")

    def services(self) -> Any:
        """The running app's Services (for tests that reach inside)."""
        assert self._server is not None
        app = self._server.config.loaded_app
        while not hasattr(app, "state"):
            app = app.app  # through uvicorn's and our own wrappers
        return app.state.services

    def connection_guard(self) -> ConnectionGuard:
        """The running server's connection cap (for tests of it)."""
        assert self._server is not None
        config = self._server.config
        assert isinstance(config, GatewayConfig)
        return config.guard

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Direct reads of the SQLite file, independent of the gateway's code.

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as db:
            return list(db.execute(sql, args).fetchall())

    def execute(self, sql: str, *args: Any) -> None:
        with sqlite3.connect(self.db) as db:
            db.execute(sql, args)

    def balance(self, user_id: str = "demo") -> int:
        return int(self.query("SELECT balance_nano FROM users WHERE id = ?", user_id)[0][0])

    def charges(self, user_id: str = "demo") -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM ledger WHERE user_id = ? AND kind = 'charge' ORDER BY created_at",
                (user_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def add_user(self, user_id: str, balance_nano: int, tier: str = "free") -> str:
        """A user with its own key and opening balance (a ledger top-up); returns the key."""
        key = new_key()
        now = datetime.now(UTC).isoformat()
        with sqlite3.connect(self.db) as db:
            db.execute(
                "INSERT INTO users (id, name, tier_id) VALUES (?, ?, ?)", (user_id, user_id, tier)
            )
            db.execute(
                "INSERT INTO api_keys (key_hash, prefix, user_id, name, revoked, created_at) "
                "VALUES (?, ?, ?, 'test', 0, ?)",
                (hash_key(key), key_prefix(key), user_id, now),
            )
            db.execute(
                "INSERT INTO ledger (request_id, user_id, kind, amount_nano, created_at) "
                "VALUES (?, ?, 'topup', ?, ?)",
                (f"topup:{user_id}", user_id, balance_nano, now),
            )
        if self._server is not None:
            self.refresh()
        return key

    def refresh(self) -> None:
        response = httpx.post(
            f"{self.base_url}/admin/cache/refresh",
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        assert response.status_code == 200, response.text
