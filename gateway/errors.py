"""One error type, and how it is written for the client: OpenAI-shaped JSON, or
Anthropic's shape on the Anthropic routes (`render`).

    GatewayError(status, message, type, code, param)
      400 invalid_request_error   bad JSON, missing or wrong-typed fields,
                                  context_length_exceeded
          invalid_http_request    not HTTP/1.1 at all (gateway.edge.connections)
      401 invalid_api_key         no key, unknown or revoked key, wrong admin key
      402 insufficient_quota      the hold does not fit the available balance
          key_spend_cap_reached   ...or what the key's spend cap leaves
          budget_exceeded         ...or what a budget leaves in its window (the error
                                  names it under `budget`)
      403 model_not_allowed       the key may not use that model
      404 model_not_found         unknown or inactive model; unknown route
      405 method_not_allowed
      408 request_timeout         the body did not arrive in time
      413 request_too_large       the body is past GATEWAY_MAX_BODY_BYTES
      429 rate_limit_exceeded     (with Retry-After)
      431 request_header_fields_too_large   the head is past GATEWAY_MAX_HEADER_BYTES
      500 internal_error          anything unexpected (no traceback leaves)
      502 upstream_error          the provider failed or answered with an error,
                                  or an answer past the upstream limits
      503 service_unavailable     provider without credentials, store down
          too_many_connections    every connection the gateway can hold is busy
      504 upstream_timeout        the provider did not answer in time

Errors a provider caused are `retryable`: before the first byte reaches the
client, the gateway tries again or falls back to the next model.

Every error body names the request's id as a top-level `request_id`.

On the Anthropic routes the same catalogue is written as Anthropic writes its
errors: `{"type": "error", "error": {"type", "message", "code", "param"},
"request_id"}`, the error's type named by its status (ANTHROPIC_TYPES); the
provider side being overloaded (a provider cooling down, no model the router
could use now) is Anthropic's 529 overloaded_error there. A 503 whose cause is
the gateway's own (store, ledger, a provider's configuration) stays 503.

Failures that no retry would fix soon (a provider without credentials, or
disabled) carry `x-should-retry: false`, which the openai and anthropic SDKs
obey instead of retrying a 503.

Foreign exceptions (the HTTP client's, sqlite's, ...) are translated into GatewayError
where they enter, `from exc` kept, so handlers only ever raise this type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.edge.tags import Dialect, dialect_of, request_id_of

log = logging.getLogger("gateway.errors")

# Anthropic's error types, by status; any other 4xx is invalid_request_error, 5xx api_error.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Our codes that mean the provider side is overloaded for now: Anthropic's 529.
OVERLOADED_CODES = frozenset({"provider_cooling_down", "no_route_available"})
# Our codes that no retry fixes soon: the SDKs are told not to retry them.
FINAL_CODES = frozenset({"provider_not_configured", "provider_unavailable"})


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool = False,
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.details = details  # more fields of the error object (a budget's state)
        self.retryable = retryable  # another attempt (or the next model) may succeed
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        if code in FINAL_CODES:
            self.headers.setdefault("x-should-retry", "false")

    def body(self, request_id: str | None = None) -> dict[str, object]:
        """OpenAI's shape."""
        error: dict[str, object] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.details:
            error.update(self.details)
        if request_id is None:
            return {"error": error}
        return {"error": error, "request_id": request_id}

    @property
    def anthropic_status(self) -> int:
        return 529 if self.code in OVERLOADED_CODES else self.status

    def anthropic_body(self, request_id: str | None) -> dict[str, object]:
        """Anthropic's shape, keeping our code and param for the clients that read them."""
        status = self.anthropic_status
        kind = ANTHROPIC_TYPES.get(status) or (
            "api_error" if status >= 500 else "invalid_request_error"
        )
        error: dict[str, object] = {
            "type": kind,
            "message": self.message,
            "code": self.code,
            "param": self.param,
        }
        if self.details:
            error.update(self.details)
        return {"type": "error", "error": error, "request_id": request_id}

    def render(self, dialect: Dialect, request_id: str | None) -> tuple[int, bytes]:
        """The status and JSON body in the caller's dialect."""
        if dialect == "anthropic":
            return self.anthropic_status, orjson.dumps(self.anthropic_body(request_id))
        return self.status, orjson.dumps(self.body(request_id))

    def response(self, dialect: Dialect = "openai", request_id: str | None = None) -> Response:
        status, payload = self.render(dialect, request_id)
        return Response(
            payload, status_code=status, media_type="application/json", headers=self.headers
        )


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def invalid_api_key(message: str = "Invalid API key provided.") -> GatewayError:
    return GatewayError(401, message, type="invalid_request_error", code="invalid_api_key")


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{model}' does not exist or is not active.",
        param="model",
        code="model_not_found",
    )


def insufficient_quota(available_usd: str, needed_usd: str) -> GatewayError:
    return GatewayError(
        402,
        f"Insufficient balance: this request may cost up to ${needed_usd} "
        f"and ${available_usd} is available. Top up your balance or lower max_tokens.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def model_not_allowed(model: str) -> GatewayError:
    return GatewayError(
        403,
        f"This API key may not use the model '{model}'.",
        type="permission_error",
        param="model",
        code="model_not_allowed",
    )


def spend_cap_reached(available_usd: str, needed_usd: str) -> GatewayError:
    return GatewayError(
        402,
        f"This API key's spend cap leaves ${available_usd} and this request may cost up to "
        f"${needed_usd}. Raise the key's cap or lower max_tokens.",
        type="insufficient_quota",
        code="key_spend_cap_reached",
    )


def budget_exceeded(
    budget: Mapping[str, object], available_usd: str, needed_usd: str
) -> GatewayError:
    """A budget on the request's path (its key, user, team or end user) leaves less
    than the request may cost in the budget's window."""
    resets = budget.get("resets_at")
    when = f"; it resets at {resets}" if resets else "; it never resets"
    return GatewayError(
        402,
        f"The {budget['window']} budget '{budget['id']}' ({budget['scope']} {budget['subject']}) "
        f"leaves ${available_usd} and this request may cost up to ${needed_usd}{when}.",
        type="insufficient_quota",
        code="budget_exceeded",
        details={"budget": {**budget, "remaining_usd": available_usd, "needed_usd": needed_usd}},
    )


def unavailable(message: str, code: str = "service_unavailable") -> GatewayError:
    return GatewayError(503, message, type="service_unavailable", code=code)


def upstream_error(message: str, status: int = 502, code: str = "upstream_error") -> GatewayError:
    """A provider failed (connection, timeout, 5xx, bad answer): worth a fallback."""
    return GatewayError(status, message, type="upstream_error", code=code, retryable=True)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def internal_error() -> GatewayError:
    return GatewayError(
        500, "The gateway hit an internal error.", type="internal_error", code="internal_error"
    )


def answer(request: Request, error: GatewayError) -> Response:
    """`error` in the dialect and with the id noted on the request as it entered."""
    scope = request.scope
    return error.response(dialect_of(scope), request_id_of(scope))


async def handle_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return answer(request, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return answer(
        request, GatewayError(exc.status_code, str(exc.detail), code=code, headers=exc.headers)
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    return answer(request, internal_error())
