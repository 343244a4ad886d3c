"""Every failure is OpenAI-shaped, has the right status, and never moves a balance."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9


def post(gw: GatewayServer, body: Any, key: str | None = "demo", **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.demo_key if key == 'demo' else key}"} if key else {}
    if isinstance(body, bytes | str):
        kwargs["content"] = body
    else:
        kwargs["json"] = body
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers=headers, timeout=30, **kwargs)


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": MINI, "messages": [{"role": "user", "content": content}], **extra}


def assert_error(response: httpx.Response, status: int, code: str | None, etype: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["type"] == etype
    assert "Traceback" not in response.text
    return str(body["error"]["message"])


def assert_untouched(gw: GatewayServer, fake: FakeOpenAI, calls: int = 0) -> None:
    assert gw.balance() == START
    assert gw.charges() == []
    assert fake.calls == calls


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "No API key provided"),
        ("gw-not-a-real-key", "Invalid API key"),
    ],
)
def test_missing_or_unknown_key_is_401(gateway, fake_openai, key, message):
    text = assert_error(
        post(gateway, chat(), key=key), 401, "invalid_api_key", "invalid_request_error"
    )
    assert message in text
    assert_untouched(gateway, fake_openai)


def test_revoked_key_is_401_after_refresh(gateway: GatewayServer, fake_openai: FakeOpenAI):
    assert post(gateway, chat()).status_code == 200
    charged = gateway.balance()
    gateway.execute("UPDATE api_keys SET revoked = 1")
    refresh = httpx.post(
        f"{gateway.base_url}/admin/cache/refresh",
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    )
    assert refresh.status_code == 200
    text = assert_error(post(gateway, chat()), 401, "invalid_api_key", "invalid_request_error")
    assert "revoked" in text
    assert gateway.balance() == charged and fake_openai.calls == 1


def test_openai_sdk_sees_authentication_error(gateway: GatewayServer):
    sdk = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="nope", max_retries=0)
    with sdk, pytest.raises(openai.AuthenticationError) as caught:
        sdk.chat.completions.create(model=MINI, messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        ({"messages": [{"role": "user", "content": "x"}]}, "missing", "model"),
        ({"model": 7, "messages": [{"role": "user", "content": "x"}]}, "invalid_type", "model"),
        ({"model": MINI}, "missing", "messages"),
        ({"model": MINI, "messages": []}, "invalid_type", "messages"),
        ({"model": MINI, "messages": ["hi"]}, "invalid_type", "messages[0]"),
        (chat(max_tokens="10"), "invalid_type", "max_tokens"),
        (chat(max_tokens=0), "invalid_value", "max_tokens"),
        (chat(max_tokens=True), "invalid_type", "max_tokens"),
        (chat(stream="yes"), "invalid_type", "stream"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(gateway, fake_openai, body, code, param):
    response = post(gateway, body)
    assert_error(response, 400, code, "invalid_request_error")
    assert response.json()["error"]["param"] == param
    assert_untouched(gateway, fake_openai)


def test_unknown_and_inactive_models_are_404(gateway: GatewayServer, fake_openai: FakeOpenAI):
    text = assert_error(
        post(gateway, {**chat(), "model": "gpt-99"}),
        404,
        "model_not_found",
        "invalid_request_error",
    )
    assert "gpt-99" in text
    gateway.execute("UPDATE model_configurations SET is_active = 0 WHERE model_id = ?", MINI)
    httpx.post(
        f"{gateway.base_url}/admin/cache/refresh",
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    )
    assert_error(post(gateway, chat()), 404, "model_not_found", "invalid_request_error")
    assert_untouched(gateway, fake_openai)


def test_context_window_exceeded_is_400(gateway: GatewayServer, fake_openai: FakeOpenAI):
    # gpt-4o-2024-05-13 has a 128,000-token window
    body = {**chat("hello"), "model": "gpt-4o-2024-05-13", "max_tokens": 128_000}
    text = assert_error(
        post(gateway, body), 400, "context_length_exceeded", "invalid_request_error"
    )
    assert "128000" in text
    assert_untouched(gateway, fake_openai)


def test_insufficient_balance_is_402_before_the_provider(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    key = gateway.add_user("poor", balance_nano=1000)  # $0.000001
    response = post(gateway, chat(max_tokens=1000), key=key)
    text = assert_error(response, 402, "insufficient_quota", "insufficient_quota")
    assert "0.000001000" in text
    assert fake_openai.calls == 0
    assert gateway.balance("poor") == 1000
    assert gateway.charges("poor") == []
    sdk = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key, max_retries=0)
    with sdk, pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=MINI, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 402


def test_provider_without_credentials_is_503_naming_the_setting(
    make_gateway: Callable[..., GatewayServer], fake_openai: FakeOpenAI
):
    gw = make_gateway(env={"OPENAI_API_KEY": ""})
    text = assert_error(post(gw, chat()), 503, "provider_not_configured", "service_unavailable")
    assert "OPENAI_API_KEY" in text
    assert gw.balance() == START and fake_openai.calls == 0


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (500, 502, "upstream_error"),
        (503, 502, "upstream_error"),
        (400, 400, None),
    ],
)
def test_upstream_errors_are_relayed_without_charge(
    gateway, fake_openai, status: int, expected: int, code: str | None
):
    fake_openai.fail_next = [(status, "the upstream is having a bad day")]
    response = post(gateway, chat())
    assert response.status_code == expected
    assert response.json()["error"]["code"] == code
    assert "the upstream is having a bad day" in response.json()["error"]["message"]
    assert_untouched(gateway, fake_openai, calls=1)


def test_upstream_auth_failure_is_502_and_leaks_no_secret(
    make_gateway: Callable[..., GatewayServer], fake_openai: FakeOpenAI
):
    gw = make_gateway(env={"OPENAI_API_KEY": "sk-wrong-secret-value"})
    response = post(gw, chat())
    text = assert_error(response, 502, "upstream_error", "upstream_error")
    assert "credentials" in text
    assert "sk-wrong-secret-value" not in response.text
    assert gw.balance() == START


def test_upstream_timeout_is_504(make_gateway, fake_openai: FakeOpenAI):
    gw = make_gateway(env={"GATEWAY_UPSTREAM_TOTAL_TIMEOUT": "0.3"})
    fake_openai.delay = 1.0
    assert_error(post(gw, chat()), 504, "upstream_timeout", "upstream_error")
    assert gw.balance() == START and gw.charges() == []


def test_unreachable_upstream_is_502(make_gateway, fake_openai: FakeOpenAI):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    gw = make_gateway(env={"OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port}/v1"})
    text = assert_error(post(gw, chat()), 502, "upstream_error", "upstream_error")
    assert "connect" in text
    assert gw.balance() == START


def test_streaming_upstream_error_before_first_byte(gateway, fake_openai: FakeOpenAI):
    fake_openai.fail_next = [(500, "boom")]
    response = post(gateway, chat(stream=True))
    assert_error(response, 502, "upstream_error", "upstream_error")
    assert_untouched(gateway, fake_openai, calls=1)


def test_unknown_route_and_method_are_openai_shaped(gateway: GatewayServer):
    assert_error(
        httpx.get(f"{gateway.base_url}/v1/nothing"), 404, "not_found", "invalid_request_error"
    )
    assert_error(
        httpx.get(f"{gateway.base_url}/v1/chat/completions"),
        405,
        "method_not_allowed",
        "invalid_request_error",
    )


@pytest.mark.parametrize("auth", [None, "Bearer wrong-admin-key", "Basic abc"])
def test_admin_endpoints_need_the_admin_key(gateway: GatewayServer, auth: str | None):
    headers = {"Authorization": auth} if auth else {}
    for method, path in (("GET", "/admin/cache/stats"), ("POST", "/admin/cache/refresh")):
        response = httpx.request(method, f"{gateway.base_url}{path}", headers=headers)
        assert_error(response, 401, "invalid_api_key", "invalid_request_error")
    # the demo user's key is not an admin key
    response = httpx.get(
        f"{gateway.base_url}/admin/cache/stats",
        headers={"Authorization": f"Bearer {gateway.demo_key}"},
    )
    assert response.status_code == 401
