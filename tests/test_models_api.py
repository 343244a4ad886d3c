"""GET /v1/models and /v1/models/{id}: only what can be served now, through the
openai and anthropic SDKs with strict response validation; and a model whose
provider has no credentials refused once, never retried by the SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.harness import GatewayServer
from tests.test_metrics import scrape

MINI = "gpt-4o-mini-2024-07-18"
CLAUDE = "claude-3-opus-20240229"
PRESETS = ["auto", "auto:cheap", "auto:balanced", "auto:best"]
SLASHED = "org/tuned-model:v1"  # ids may hold "/" and ":"
UNPRICED = "unpriced-1"


@pytest.fixture(scope="module")
def gw(module_gateway: GatewayServer) -> GatewayServer:
    """OpenAI's credentials only: the Claude and Gemini models cannot be served.
    Two models of its own on the mock provider: one with a slashed id, one unpriced."""
    for model_id, extra in [(SLASHED, {}), (UNPRICED, {"needs_price": True})]:
        created = admin(module_gateway, "POST", "/admin/models", {**model_doc(model_id), **extra})
        assert created.status_code == 201, created.text
    return module_gateway


def model_doc(model_id: str) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "provider": "mock",
        "input_price_per_million": "1",
        "output_price_per_million": "2",
        "context_window_size": 1000,
        "max_output_tokens": 100,
    }


def admin(gw: GatewayServer, method: str, path: str, body: Any = None) -> httpx.Response:
    auth = {"Authorization": f"Bearer {gw.admin_key}"}
    return httpx.request(method, gw.base_url + path, headers=auth, json=body, timeout=30)


def key_for(gw: GatewayServer, allowed: list[str]) -> str:
    response = admin(gw, "POST", "/admin/users/demo/keys", {"name": "t", "allowed_models": allowed})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def openai_client(gw: GatewayServer, key: str | None = None, **options: Any) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    return openai.OpenAI(
        base_url=f"{gw.base_url}/v1",
        api_key=key or gw.demo_key,
        _strict_response_validation=True,
        **options,
    )


def anthropic_client(gw: GatewayServer, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.base_url,
        api_key=key or gw.demo_key,
        max_retries=0,
        _strict_response_validation=True,
    )


def test_the_list_holds_what_can_be_served_now(gw: GatewayServer):
    with openai_client(gw) as client:
        models = {m.id: m for m in client.models.list()}
    assert MINI in models and "mock-1" in models and SLASHED in models
    assert models[MINI].owned_by == "openai" and models["mock-1"].owned_by == "mock"
    assert not [m for m in models if m.startswith(("claude", "gemini"))]  # no credentials
    assert UNPRICED not in models
    assert [models[p].owned_by for p in PRESETS] == ["gateway"] * 4
    assert list(models)[-4:] == PRESETS


def test_all_lists_every_active_model_and_why_it_cannot_be_served(gw: GatewayServer):
    listed = httpx.get(f"{gw.base_url}/v1/models", params={"all": "true"}).json()["data"]
    reasons = {m["id"]: (m["servable"], m["unavailable_reason"]) for m in listed}
    assert reasons[MINI] == (True, None)
    assert reasons[CLAUDE] == (False, "provider_not_configured")
    assert reasons["gemini-2.0-flash"] == (False, "provider_not_configured")
    assert reasons[UNPRICED] == (False, "needs_price")
    assert reasons["auto"] == (True, None)
    assert len(listed) == 41 + 2 + 4  # the catalogue, ours, the presets


def test_a_key_with_allowed_models_sees_only_those(gw: GatewayServer):
    with openai_client(gw, key_for(gw, [MINI, CLAUDE])) as client:
        assert [m.id for m in client.models.list()] == [MINI, *PRESETS]
    # Nothing servable left for the router: no presets (with ?all=true, the reason).
    embeddings_only = key_for(gw, ["text-embedding-3-small"])
    with openai_client(gw, embeddings_only) as client:
        assert [m.id for m in client.models.list()] == ["text-embedding-3-small"]
    auth = {"Authorization": f"Bearer {embeddings_only}"}
    listed = httpx.get(f"{gw.base_url}/v1/models?all=true", headers=auth).json()["data"]
    assert {m["id"]: m["unavailable_reason"] for m in listed if m["owned_by"] == "gateway"} == {
        preset: "no_servable_model" for preset in PRESETS
    }


def test_retrieve_through_the_openai_sdk(gw: GatewayServer):
    with openai_client(gw) as client:
        mini = client.models.retrieve(MINI)
        slashed = client.models.retrieve(SLASHED)
        preset = client.models.retrieve("auto:cheap")
        claude = client.models.retrieve(CLAUDE)
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    assert (mini.id, mini.object, mini.owned_by) == (MINI, "model", "openai")
    assert mini.model_extra == {
        "context_window": 128000,
        "servable": True,
        "unavailable_reason": None,
    }
    assert (slashed.id, slashed.owned_by) == (SLASHED, "mock")
    assert (preset.id, preset.owned_by) == ("auto:cheap", "gateway")
    assert claude.model_extra["unavailable_reason"] == "provider_not_configured"  # type: ignore[index]
    body = missing.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found"
    assert (
        missing.value.response.json()["request_id"]
        == missing.value.response.headers["x-request-id"]
    )


def test_the_list_and_retrieve_in_anthropic_shape(gw: GatewayServer):
    with anthropic_client(gw) as client:
        page = client.models.list()
        mini = client.models.retrieve(MINI)
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    ids = [m.id for m in page.data]
    assert MINI in ids and SLASHED in ids and CLAUDE not in ids and ids[-4:] == PRESETS
    assert (page.first_id, page.last_id, page.has_more) == (ids[0], "auto:best", False)
    assert (mini.type, mini.id, mini.display_name, mini.lifecycle) == (
        "model",
        MINI,
        MINI,
        "active",
    )
    as_openai = httpx.get(f"{gw.base_url}/v1/models/{MINI}").json()
    assert int(mini.created_at.timestamp()) == as_openai["created"]
    assert mini.max_input_tokens == 128000
    body = missing.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == missing.value.response.headers["request-id"]


def failed_requests(gw: GatewayServer, status: str) -> float:
    return sum(
        count
        for (name, labels), count in scrape(gw).items()
        if name == "gateway_requests_total"
        and dict(labels).get("route") == "/v1/chat/completions"
        and dict(labels).get("status") == status
    )


def test_a_provider_without_credentials_is_refused_once_and_not_retried(gw: GatewayServer):
    """The openai SDK retries a 503 twice by default: `x-should-retry: false` stops it."""
    before = failed_requests(gw, "503")
    with openai_client(gw, max_retries=2) as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["code"] == "provider_not_configured"  # type: ignore[index]
    assert failed_requests(gw, "503") - before == 1
