"""Property-based fuzzing over a real socket: mutated bodies to every /v1 POST
route and to the admin writes never get a 5xx, every refusal is an
OpenAI-shaped error, and a refused request never moves a balance.

One gateway per family, started once; the Claude and Gemini models point at
the fake upstreams so that their translators run. Derandomised, so CI sees the
same examples every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.tokens import TokenCounter
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fuzz_bodies import encoded, mutated
from tests.harness import GatewayServer

CLAUDE = "claude-3-5-haiku-20241022"
GEMINI = "gemini-2.0-flash"
MINI = "gpt-4o-mini-2024-07-18"
CHAT_MODELS = ("mock-1", CLAUDE, GEMINI, MINI, "auto", "no-such-model")

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHAT: dict[str, Any] = {
    "model": "mock-1",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "user", "content": "And then?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look it up.",
                "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}},
            },
        }
    ],
    "tool_choice": "auto",
    "stop": ["\n\n"],
    "n": 1,
    "temperature": 0.5,
    "top_p": 1,
    "response_format": {"type": "text"},
    "max_tokens": 20,
    "stream": False,
    "stream_options": {"include_usage": True},
}
MESSAGES: dict[str, Any] = {
    "model": CLAUDE,
    "max_tokens": 20,
    "system": [{"type": "text", "text": "Be brief."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "42"}],
                    "is_error": False,
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.test/a.png"}},
            ],
        },
    ],
    "tools": [{"name": "lookup", "description": "Look it up.", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 5,
    "metadata": {"user_id": "u1"},
    "stream": False,
}
RESPONSES: dict[str, Any] = {
    "model": "mock-1",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q": 1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "42"}],
        },
    ],
    "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "function", "name": "lookup"},
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}},
    "max_output_tokens": 20,
    "temperature": 0.5,
    "metadata": {"team": "blue"},
    "store": False,
    "stream": False,
}
V1: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "/v1/chat/completions": (CHAT, CHAT_MODELS),
    "/v1/messages": (MESSAGES, CHAT_MODELS),
    "/v1/responses": (RESPONSES, CHAT_MODELS),
    "/v1/completions": (
        {"model": "gpt-3.5-turbo-instruct", "prompt": ["Say hi"], "max_tokens": 5},
        ("gpt-3.5-turbo-instruct", "mock-1"),
    ),
    "/v1/embeddings": (
        {"model": "text-embedding-3-small", "input": ["a cat", "a dog"]},
        ("text-embedding-3-small", "mock-1"),
    ),
    "/v1/generate": (
        {"model": "mock-1", "prompt": "Say hi", "max_tokens": 10},
        ("mock-1", CLAUDE, GEMINI, MINI),
    ),
}


ANTHROPIC_ROUTES = ("/v1/messages", "/v1/messages/count_tokens")


def assert_error_body(response: httpx.Response) -> None:
    """OpenAI's shape, or Anthropic's on its routes; either names the request's id."""
    body = response.json()
    if response.request.url.path in ANTHROPIC_ROUTES:
        assert list(body) == ["type", "error", "request_id"], body
        assert body["type"] == "error"
    else:
        assert list(body) == ["error", "request_id"], body
    assert body["request_id"] == response.headers["x-request-id"]
    error = body["error"]
    assert set(error) - {"message", "type", "param", "code"} == set(), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert_error_body(response)


def _start(data_dir: Path, counter: TokenCounter, env: dict[str, str]) -> GatewayServer:
    secret = {"GATEWAY_SECRET_KEY": Fernet.generate_key().decode()}
    return GatewayServer(data_dir, counter, {**env, **secret}).start()


@pytest.fixture(scope="module")
def v1_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    fake_openai_server: FakeOpenAI,
    every_provider_env: dict[str, str],
) -> Iterator[GatewayServer]:
    fake_openai_server.reset()
    server = _start(tmp_path_factory.mktemp("fuzz-v1"), counter, every_provider_env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def v1_client(v1_gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=v1_gateway.base_url, timeout=60) as client:
        yield client


@pytest.mark.parametrize("route", sorted(V1))
@FUZZ
@given(data=st.data())
def test_v1_routes_never_fail_on_bad_input(
    route: str, data: st.DataObject, v1_gateway: GatewayServer, v1_client: httpx.Client
) -> None:
    one_fuzzed_request(route, data, v1_gateway, v1_client)


@pytest.mark.soak
@pytest.mark.parametrize("route", sorted(V1))
@settings(FUZZ, max_examples=2000)
@given(data=st.data())
def test_v1_routes_never_fail_on_bad_input_at_length(
    route: str, data: st.DataObject, v1_gateway: GatewayServer, v1_client: httpx.Client
) -> None:
    """10,000 fuzzed requests in all, for `make soak`."""
    one_fuzzed_request(route, data, v1_gateway, v1_client)


def one_fuzzed_request(
    route: str, data: st.DataObject, v1_gateway: GatewayServer, v1_client: httpx.Client
) -> None:
    base, models = V1[route]
    body = {**base, "model": data.draw(st.sampled_from(models))}
    raw = encoded(data, mutated(data, body))
    key = data.draw(st.sampled_from(("demo", "demo", "demo", "demo", "none", "wrong")))
    headers = {"content-type": "application/json"}
    if key == "demo":
        headers["authorization"] = f"Bearer {v1_gateway.demo_key}"
    elif key == "wrong":
        headers["authorization"] = "Bearer gw-not-a-key"
    before = v1_gateway.balance()
    response = v1_client.post(route, content=raw, headers=headers)
    assert_answered(response)
    if response.status_code != 200:
        assert v1_gateway.balance() == before, "a refused request moved the balance"
    if key != "demo":
        assert response.status_code == 401, "no valid key, yet not 401"


MODEL_DOC: dict[str, Any] = {
    "model_id": "fuzz-model",
    "provider": "mock",
    "input_price_per_million": "0.15",
    "output_price_per_million": "0.60",
    "cached_input_price_per_million": "0.075",
    "context_window_size": 128000,
    "max_output_tokens": 4096,
    "tokenizer": "o200k_base",
    "mode": "chat",
    "fallbacks": ["mock-1"],
    "note": "fuzzed",
}
PROVIDER_DOC: dict[str, Any] = {
    "id": "fuzz-provider",
    "kind": "openai",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key_env": "FUZZ_API_KEY",
    "display_name": "Fuzz",
    "rpm": 0,
    "tpm": 0,
    "fallback_priority": 100,
    "connect_timeout": 1.0,
}
KEY_DOC: dict[str, Any] = {
    "name": "fuzz key",
    "allowed_models": ["mock-1", "auto"],
    "rpm": 10,
    "tpm": 0,
    "spend_cap_usd": "1.50",
}
# (method, path, base body); "{key}" is replaced by a key made for the run.
ADMIN: tuple[tuple[str, str, Any], ...] = (
    ("POST", "/admin/users", {"id": "fuzz-user", "name": "Fuzz", "tier_id": "free"}),
    ("PATCH", "/admin/users/demo", {"name": "Demo", "tier_id": "free"}),
    (
        "POST",
        "/admin/users/demo/topup",
        {"amount_usd": "1.25", "reason": "r", "idempotency_key": "k"},
    ),
    ("POST", "/admin/users/demo/adjust", {"amount_usd": "-0.50", "reason": "a fix"}),
    ("POST", "/admin/users/demo/keys", KEY_DOC),
    ("PATCH", "/admin/keys/{key}", KEY_DOC),
    ("POST", "/admin/providers", PROVIDER_DOC),
    ("PATCH", "/admin/providers/mock", {"display_name": "Mock", "rpm": 0, "read_timeout": 5}),
    ("PUT", "/admin/providers/mock/api-key", {"api_key": "sk-fuzz"}),
    ("POST", "/admin/models", MODEL_DOC),
    ("PATCH", "/admin/models/mock-1", {"note": "n", "fallbacks": [], "max_output_tokens": 100}),
    ("POST", "/admin/models/bulk?dry_run=true", {"models": [MODEL_DOC]}),
    ("POST", "/admin/models/reorder", {"models": ["mock-1"], "providers": ["mock"]}),
    ("POST", "/admin/models/mock-1/prices", {"input_price_per_million": "0.15", "reason": "r"}),
    ("POST", "/admin/tiers", {"id": "fuzz-tier", "name": "Fuzz", "markup_percent": "5"}),
    ("PATCH", "/admin/tiers/free", {"name": "Free Tier", "markup_percent": "10"}),
    ("PUT", "/admin/router/config", {"multipliers": {"simple": 0.7}, "chain_length": 3}),
    ("PUT", "/admin/router/profiles/mock-1", {"quality": 50, "speed_tier": "fast"}),
    ("POST", "/admin/router/simulate", {"messages": [{"role": "user", "content": "hi"}]}),
    (
        "POST",
        "/admin/prices/import?format=per_1m&dry_run=true",
        {"mock-1": {"input": "0.15", "output": "0.60"}, "openai": {"gpt-4o": {"input": 2.5}}},
    ),
    (
        "POST",
        "/admin/prices/import?format=litellm",
        {"mock-1": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}},
    ),
    (
        "POST",
        "/admin/prices/import?format=openrouter&dry_run=true",
        {"data": [{"id": "mock/mock-1", "pricing": {"prompt": "0.00000015", "completion": "0"}}]},
    ),
)


@pytest.fixture(scope="module")
def admin_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    every_provider_env: dict[str, str],
) -> Iterator[GatewayServer]:
    server = _start(tmp_path_factory.mktemp("fuzz-admin"), counter, every_provider_env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_client(admin_gateway: GatewayServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {admin_gateway.admin_key}"}
    with httpx.Client(base_url=admin_gateway.base_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def key_id(admin_client: httpx.Client) -> str:
    made = admin_client.post("/admin/users/demo/keys", json={"name": "to patch"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


@pytest.mark.parametrize(("method", "path", "base"), ADMIN, ids=[f"{m} {p}" for m, p, _ in ADMIN])
@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_admin_writes_never_fail_on_bad_input(
    method: str,
    path: str,
    base: Any,
    data: st.DataObject,
    admin_client: httpx.Client,
    key_id: str,
) -> None:
    if method == "POST" and isinstance(base, dict) and {"id", "model_id"} & set(base):
        # A new id each time, so that creations succeed and fill the store.
        name = "model_id" if "model_id" in base else "id"
        base = {**base, name: f"{base[name]}-{data.draw(st.integers(0, 10**6))}"}
    raw = encoded(data, mutated(data, base))
    response = admin_client.request(
        method,
        path.replace("{key}", key_id),
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert_answered(response)


# Writes whose path names an entity: the name is fuzzed (quoted into the URL).
ADMIN_PATHS = (
    ("PATCH", "/admin/users/{}", {"name": "x"}),
    ("POST", "/admin/users/{}/topup", {"amount_usd": "1"}),
    ("PATCH", "/admin/keys/{}", {"name": "x"}),
    ("POST", "/admin/providers/{}/disable", None),
    ("PATCH", "/admin/models/{}", {"note": "x"}),
    ("POST", "/admin/models/{}/prices", {"input_price_per_million": "1"}),
    ("PATCH", "/admin/tiers/{}", {"name": "x"}),
    ("PUT", "/admin/router/profiles/{}", {"quality": 50}),
    ("POST", "/admin/history/{}/rollback", None),
)
_PATH_NAMES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(("mock-1", "mock", "demo", "free", "1", "0", "..", "%00", "a/b")),
)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_admin_paths_never_fail_on_odd_names(data: st.DataObject, admin_client: httpx.Client):
    method, template, body = data.draw(st.sampled_from(ADMIN_PATHS))
    name = quote(data.draw(_PATH_NAMES), safe="")
    response = admin_client.request(method, template.format(name), json=body)
    assert_answered(response)


def test_discovery_after_the_admin_fuzz_answers(admin_client: httpx.Client, key_id: str) -> None:
    """Whatever the fuzzed writes left in the store, a sync runs to its end."""
    response = admin_client.post("/admin/sync")
    assert response.status_code == 200, response.text
    assert {r["provider"] for r in response.json()["data"]} >= {"mock", "anthropic", "google"}
