"""A small admin client for tests, and a fingerprint of everything the admin
API can write, to prove that a refused request wrote nothing."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from tests.harness import GatewayServer

TABLES = (
    "providers",
    "model_configurations",
    "model_prices",
    "pricing_tiers",
    "users",
    "api_keys",
    "ledger",
    "router_config",
    "model_profiles",
    "config_history",
)


class Admin:
    def __init__(self, gw: GatewayServer, key: str | None = None) -> None:
        self.gw = gw
        token = gw.admin_key if key is None else key
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.gw.base_url}{path}",
            headers=self.headers,
            json=body,
            params=params or None,
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.call("GET", path, **params)

    def post(self, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.call("POST", path, body, **params)

    def patch(self, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.call("PATCH", path, body, **params)

    def put(self, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.call("PUT", path, body, **params)

    def delete(self, path: str, **params: Any) -> httpx.Response:
        return self.call("DELETE", path, **params)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()


def fingerprint(gw: GatewayServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the admin API writes."""
    with sqlite3.connect(gw.db) as db:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in TABLES
        }


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    assert body["request_id"] == response.headers["x-request-id"]
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error
