"""Every admin route refuses a missing or wrong key with 401 and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.settings import Settings, SettingsError
from tests.admin_client import Admin, error_of, fingerprint
from tests.harness import GatewayServer

MODEL = {
    "model_id": "x-1",
    "provider": "mock",
    "input_price_per_million": "1",
    "output_price_per_million": "2",
    "context_window_size": 1000,
    "max_output_tokens": 100,
}
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/admin/cache/refresh", None),
    ("PUT", "/admin/router/config", {"chain_length": 2}),
    ("PUT", "/admin/router/profiles/mock-1", {"quality": 50}),
    ("DELETE", "/admin/router/profiles/mock-1", None),
    ("POST", "/admin/router/simulate", {"messages": [{"role": "user", "content": "hi"}]}),
    ("POST", "/admin/history/1/rollback", None),
    ("POST", "/admin/models", MODEL),
    ("PATCH", "/admin/models/mock-1", {"note": "x"}),
    ("DELETE", "/admin/models/mock-1", None),
    ("POST", "/admin/models/bulk", {"models": [MODEL]}),
    ("POST", "/admin/models/reorder", {"models": ["mock-1"]}),
    ("POST", "/admin/models/mock-1/prices", {"input_price_per_million": "9"}),
    ("POST", "/admin/providers", {"id": "p2", "kind": "mock"}),
    ("PATCH", "/admin/providers/mock", {"rpm": 5}),
    ("DELETE", "/admin/providers/mock", None),
    ("POST", "/admin/providers/mock/disable", None),
    ("POST", "/admin/providers/mock/enable", None),
    ("PUT", "/admin/providers/openai/api-key", {"api_key": "sk-secret-123456"}),
    ("DELETE", "/admin/providers/openai/api-key", None),
    ("POST", "/admin/tiers", {"id": "pro", "name": "Pro", "markup_percent": "5"}),
    ("PATCH", "/admin/tiers/free", {"markup_percent": "50"}),
    ("DELETE", "/admin/tiers/free", None),
    ("POST", "/admin/users", {"id": "mallory", "name": "M"}),
    ("PATCH", "/admin/users/demo", {"name": "x"}),
    ("POST", "/admin/users/demo/topup", {"amount_usd": "1000"}),
    ("POST", "/admin/users/demo/adjust", {"amount_usd": "1000", "reason": "x"}),
    ("POST", "/admin/users/demo/keys", {"name": "stolen"}),
]
READS = [
    "/admin/cache/stats",
    "/admin/router/config",
    "/admin/router/profiles",
    "/admin/history",
    "/admin/models",
    "/admin/models/export",
    "/admin/models/mock-1",
    "/admin/models/mock-1/prices",
    "/admin/providers",
    "/admin/tiers",
    "/admin/users",
    "/admin/users/demo",
    "/admin/users/demo/keys",
    "/admin/usage",
    "/admin/ledger",
    "/admin/reconcile",
]


def test_writes_without_the_admin_key_are_refused_and_write_nothing(gateway: GatewayServer):
    before = fingerprint(gateway)
    for key in ("", "wrong-key", gateway.demo_key):
        client = Admin(gateway, key)
        for method, path, body in WRITES:
            response = client.call(method, path, body)
            assert response.status_code == 401, (method, path, key, response.text)
            assert error_of(response)["code"] == "invalid_api_key"
        key_id = Admin(gateway).get("/admin/users/demo/keys").json()["data"][0]["id"]
        for method, path in (
            ("PATCH", f"/admin/keys/{key_id}"),
            ("POST", f"/admin/keys/{key_id}/revoke"),
        ):
            assert client.call(method, path, {"rpm": 1}).status_code == 401
    assert fingerprint(gateway) == before


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_admin_key(gateway: GatewayServer, path: str):
    assert Admin(gateway, "").get(path).status_code == 401
    assert Admin(gateway, "nope").get(path).status_code == 401
    assert Admin(gateway).get(path).status_code == 200


def test_named_admin_keys_are_who_the_history_names(
    make_gateway: Callable[..., GatewayServer],
):
    alice = "alice-admin-key-0123456789"
    gw = make_gateway(env={"GATEWAY_ADMIN_KEYS": f"alice={alice}"})
    as_alice = Admin(gw, alice)
    change = as_alice.ok(as_alice.patch("/admin/models/mock-1", {"note": "by alice"}))
    by_admin = Admin(gw).ok(Admin(gw).patch("/admin/models/mock-1", {"note": "by admin"}))
    entries = {e["id"]: e for e in Admin(gw).ok(Admin(gw).get("/admin/history"))["data"]}
    assert entries[change["history_id"]]["actor"] == "alice"
    assert entries[by_admin["history_id"]]["actor"] == "admin"
    assert Admin(gw, alice[:-1]).get("/admin/models").status_code == 401


@pytest.mark.parametrize(
    "raw", ["alice", "alice=short", "admin=0123456789abcdefgh", "a=0123456789abcdefgh,a=zz"]
)
def test_malformed_admin_keys_setting_is_refused(raw: str):
    with pytest.raises(SettingsError):
        Settings.from_env({"GATEWAY_ADMIN_KEYS": raw})
