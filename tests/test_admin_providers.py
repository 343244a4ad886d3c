"""Providers (with API keys stored encrypted and never shown) and pricing tiers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.admin_client import Admin, error_of, fingerprint
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano

MINI = "gpt-4o-mini-2024-07-18"
SECRET = "sk-live-very-secret-9876"


def chat(gw: GatewayServer, model: str = MINI, key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key or gw.demo_key}"},
        json={"model": model, "messages": [{"role": "user", "content": "a b c"}]},
        timeout=30,
    )


def test_provider_keys_are_encrypted_and_never_returned(
    make_gateway: Callable[..., GatewayServer],
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
):
    gw = make_gateway(env={"GATEWAY_SECRET_KEY": Fernet.generate_key().decode()})
    admin = Admin(gw)
    document = {
        "id": "house",
        "kind": "openai",
        "base_url": fake_openai.base_url,
        "display_name": "House OpenAI",
        "api_key": SECRET,
        "rpm": 100,
    }
    created = admin.post("/admin/providers", document)
    assert created.status_code == 201, created.text
    shown = created.json()["provider"]
    assert (shown["api_key"], shown["api_key_last4"]) == ("set", "9876")
    [[stored]] = gw.query("SELECT api_key FROM providers WHERE id = 'house'")
    assert stored.startswith("fernet:") and SECRET not in stored
    monkeypatch.setattr(fake_openai, "api_key", SECRET)  # it accepts the stored key only
    model = {
        "model_id": "house-mini",
        "provider": "house",
        "upstream_model": MINI,
        "input_price_per_million": "0.15",
        "output_price_per_million": "0.60",
        "context_window_size": 128000,
        "max_output_tokens": 1000,
    }
    assert admin.post("/admin/models", model).status_code == 201
    assert chat(gw, "house-mini").status_code == 200
    assert fake_openai.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"

    every_answer = [
        admin.get("/admin/providers").text,
        admin.get("/admin/providers/house").text,
        admin.get("/admin/history", entity="provider").text,
        admin.get("/admin/models/export").text,
    ]
    for text in every_answer:
        assert SECRET not in text and stored not in text

    rotated = admin.ok(admin.put("/admin/providers/house/api-key", {"api_key": "sk-rotated-0001"}))
    assert rotated["provider"]["api_key_last4"] == "0001"
    cleared = admin.ok(admin.delete("/admin/providers/house/api-key"))
    assert (cleared["provider"]["api_key"], cleared["provider"]["api_key_last4"]) == (
        "not set",
        None,
    )


def test_storing_a_key_needs_the_secret_key(gateway: GatewayServer):
    admin = Admin(gateway)
    before = fingerprint(gateway)
    response = admin.put("/admin/providers/openai/api-key", {"api_key": SECRET})
    assert response.status_code == 400
    assert error_of(response)["code"] == "secret_key_not_set"
    assert fingerprint(gateway) == before


def test_enable_disable_update_delete(gateway: GatewayServer, fake_openai: FakeOpenAI):
    admin = Admin(gateway)
    admin.ok(admin.post("/admin/providers/openai/disable"))
    refused = chat(gateway)
    assert refused.status_code == 503
    assert error_of(refused)["code"] == "provider_unavailable"
    admin.ok(admin.post("/admin/providers/openai/enable"))
    assert chat(gateway).status_code == 200

    updated = admin.ok(admin.patch("/admin/providers/openai", {"rpm": 1}))
    assert updated["provider"]["rpm"] == 1
    assert chat(gateway).status_code == 200
    assert chat(gateway).status_code == 429  # the provider's new limit, at once

    conflict = admin.delete("/admin/providers/openai")
    assert conflict.status_code == 409
    assert error_of(conflict)["code"] == "conflict"
    admin.ok(admin.post("/admin/providers", {"id": "spare", "kind": "mock"}), 201)
    admin.ok(admin.delete("/admin/providers/spare"))
    assert admin.get("/admin/providers/spare").status_code == 404

    before = fingerprint(gateway)
    for bad, param in [
        ({"id": "x", "kind": "carrier-pigeon"}, "kind"),
        ({"id": "x"}, "kind"),
        ({"id": "openai", "kind": "openai"}, "id"),  # duplicate
        ({"id": "x", "kind": "mock", "rpm": -1}, "rpm"),
        ({"id": "x", "kind": "mock", "enabled": "no"}, "enabled"),
        ({"id": "x", "kind": "mock", "api_key_env": "lower case"}, "api_key_env"),
        ({"id": "x", "kind": "mock", "extra": 1}, "extra"),
    ]:
        response = admin.post("/admin/providers", bad)
        assert response.status_code == 400, bad
        assert error_of(response)["param"] == param
    assert admin.patch("/admin/providers/openai", {"read_timeout": "slow"}).status_code == 400
    assert fingerprint(gateway) == before


def test_tiers_and_a_users_tier(gateway: GatewayServer, fake_openai: FakeOpenAI):
    admin = Admin(gateway)
    admin.ok(admin.post("/admin/tiers", {"id": "pro", "name": "Pro", "markup_percent": "2.5"}), 201)
    assert admin.ok(admin.get("/admin/tiers/pro"))["markup_percent"] == "2.5"
    admin.ok(admin.patch("/admin/users/demo", {"tier_id": "pro"}))
    assert chat(gateway).status_code == 200
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(
        usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60", markup_percent="2.5"
    )
    assert gateway.charges()[-1]["amount_nano"] == -cost

    before = fingerprint(gateway)
    for bad, param in [
        ({"id": "neg", "name": "N", "markup_percent": "-1"}, "markup_percent"),
        ({"id": "big", "name": "B", "markup_percent": "1001"}, "markup_percent"),
        ({"id": "pro", "name": "Again", "markup_percent": "1"}, "id"),
        ({"id": "nameless", "markup_percent": "1"}, "name"),
    ]:
        response = admin.post("/admin/tiers", bad)
        assert response.status_code == 400, bad
        assert error_of(response)["param"] == param
    assert admin.patch("/admin/users/demo", {"tier_id": "gold"}).status_code == 400
    assert admin.delete("/admin/tiers/pro").status_code == 409  # demo is on it
    assert fingerprint(gateway) == before

    change = admin.ok(admin.patch("/admin/tiers/pro", {"markup_percent": "50"}))
    admin.ok(admin.post(f"/admin/history/{change['history_id']}/rollback"))
    assert admin.ok(admin.get("/admin/tiers/pro"))["markup_percent"] == "2.5"
