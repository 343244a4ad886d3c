"""Every answer names its request's id in `x-request-id`, and every error body
carries the same id as `request_id`: metered routes or not, success or error.
(The edge's own answers, 400/408/413/431/503, are checked by `raw_http.Answer`.)"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.harness import GatewayServer

MINI = "gpt-4o-mini-2024-07-18"
ID = re.compile(r"^req_[0-9a-f]{13}[0-9a-f]{8}[0-9a-f]{6}$")


@pytest.fixture(scope="module")
def gw(module_gateway: GatewayServer) -> GatewayServer:
    """OpenAI's credentials only: Anthropic's models answer 503 provider_not_configured."""
    return module_gateway


def chat(model: str = MINI) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def call(gw: GatewayServer, method: str, path: str, key: str | None, body: object = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, gw.base_url + path, headers=headers, json=body, timeout=30)


# (method, path, which key, body, status, error code or None for a success)
CASES = [
    ("GET", "/health", None, None, 200, None),
    ("GET", "/v1/models", None, None, 200, None),
    ("GET", "/admin/users", "admin", None, 200, None),
    ("GET", "/v1/account", "demo", None, 200, None),
    ("GET", "/v1/account", None, None, 401, "invalid_api_key"),
    ("GET", "/admin/users", "wrong", None, 401, "invalid_api_key"),
    ("POST", "/v1/chat/completions", None, chat(), 401, "invalid_api_key"),
    ("POST", "/v1/chat/completions", "demo", chat("no-such-model"), 404, "model_not_found"),
    ("GET", "/no/such/route", None, None, 404, "not_found"),
    ("GET", "/v1/chat/completions", "demo", None, 405, "method_not_allowed"),
    ("DELETE", "/v1/models", None, None, 405, "method_not_allowed"),
    ("POST", "/v1/chat/completions", "demo", chat("claude-3-opus-20240229"), 503, None),
    ("GET", "/v1/models/no-such-model", None, None, 404, "model_not_found"),
]


@pytest.mark.parametrize(("method", "path", "key", "body", "status", "code"), CASES)
def test_every_answer_names_its_id_and_an_error_body_the_same(
    gw: GatewayServer, method, path, key, body, status, code
):
    keys = {"admin": gw.admin_key, "demo": gw.demo_key, "wrong": "gw-wrong", None: None}
    response = call(gw, method, path, keys[key], body)
    assert response.status_code == status, response.text
    request_id = response.headers["x-request-id"]
    assert ID.match(request_id), request_id
    if status >= 400:
        answer = response.json()
        assert answer["request_id"] == request_id
        assert answer["error"]["code"] == code or code is None


def test_ids_are_unique_and_grow_with_time(gw: GatewayServer):
    ids = [call(gw, "GET", "/health", None).headers["x-request-id"] for _ in range(5)]
    ids += [call(gw, "POST", "/v1/chat/completions", None, chat()).headers["x-request-id"]]
    ids += [call(gw, "GET", "/health", None).headers["x-request-id"]]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_the_ledger_row_has_the_id_of_the_answer(gw: GatewayServer):
    response = call(gw, "POST", "/v1/chat/completions", gw.demo_key, chat())
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    [row] = [r for r in gw.charges() if r["request_id"] == request_id]
    assert row["model_id"] == MINI
