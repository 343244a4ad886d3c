"""One error catalogue, two shapes: OpenAI's everywhere, Anthropic's on its routes."""

from __future__ import annotations

import orjson
import pytest

from config_store.schema import ApiKey
from gateway.errors import (
    GatewayError,
    insufficient_quota,
    invalid_api_key,
    model_not_allowed,
    model_not_found,
    unavailable,
    upstream_error,
)
from gateway.proxy.ratelimit import RateLimiter, key_limits

RID = "req_0000000000001abcdef01000001"


def test_the_openai_shape_is_as_before_plus_the_request_id():
    error = model_not_found("nope")
    status, payload = error.render("openai", RID)
    assert status == 404
    assert orjson.loads(payload) == {
        "error": {
            "message": "The model 'nope' does not exist or is not active.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        },
        "request_id": RID,
    }


def rate_limited() -> GatewayError:
    key = ApiKey(key_hash="h", prefix="gw-", user_id="u", name="k", rpm=1)
    limiter = RateLimiter(clock=lambda: 0.0)
    limiter.admit(key_limits(key, 0))
    with pytest.raises(GatewayError) as refused:
        limiter.admit(key_limits(key, 0))
    return refused.value


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (GatewayError(400, "bad"), 400, "invalid_request_error"),
        (invalid_api_key(), 401, "authentication_error"),
        (insufficient_quota("0", "1"), 402, "billing_error"),
        (model_not_allowed("m"), 403, "permission_error"),
        (model_not_found("m"), 404, "not_found_error"),
        (GatewayError(405, "no", code="method_not_allowed"), 405, "invalid_request_error"),
        (GatewayError(409, "taken", code="conflict"), 409, "conflict_error"),
        (GatewayError(413, "big", code="request_too_large"), 413, "request_too_large"),
        (rate_limited(), 429, "rate_limit_error"),
        (GatewayError(500, "oops", type="internal_error"), 500, "api_error"),
        (upstream_error("the provider failed"), 502, "api_error"),
        (upstream_error("slow", 504, "upstream_timeout"), 504, "timeout_error"),
        # Ours: the store, the ledger, a provider's configuration. Still 503.
        (unavailable("store down", code="store_unavailable"), 503, "api_error"),
        (unavailable("no key", code="provider_not_configured"), 503, "api_error"),
        # The provider side overloaded for now: Anthropic's 529.
        (unavailable("cooling", code="provider_cooling_down"), 529, "overloaded_error"),
        (unavailable("nothing to route to", code="no_route_available"), 529, "overloaded_error"),
    ],
)
def test_the_anthropic_shape_names_the_type_by_status(error: GatewayError, status: int, kind: str):
    rendered_status, payload = error.render("anthropic", RID)
    assert rendered_status == status
    assert orjson.loads(payload) == {
        "type": "error",
        "error": {"type": kind, "message": error.message, "code": error.code, "param": error.param},
        "request_id": RID,
    }
    assert error.render("openai", RID)[0] == error.status  # OpenAI's status never changes


def test_failures_no_retry_fixes_tell_the_sdks_not_to_retry():
    for code in ("provider_not_configured", "provider_unavailable"):
        assert unavailable("x", code=code).headers == {"x-should-retry": "false"}
    assert unavailable("x", code="store_unavailable").headers == {}
    assert upstream_error("x").headers == {}
