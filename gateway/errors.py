"""One error type, and the one function that turns it into OpenAI-shaped JSON.

    GatewayError(status, message, type, code, param)
      400 invalid_request_error   bad JSON, missing or wrong-typed fields,
                                  context_length_exceeded
          invalid_http_request    not HTTP/1.1 at all (gateway.edge.connections)
      401 invalid_api_key         no key, unknown or revoked key, wrong admin key
      402 insufficient_quota      the hold does not fit the available balance
          key_spend_cap_reached   ...or what the key's spend cap leaves
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

Foreign exceptions (aiohttp, sqlite, ...) are translated into GatewayError
where they enter, `from exc` kept, so handlers only ever raise this type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("gateway.errors")


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
    ) -> None:
        super().__init__(message)
        self.retryable = retryable  # another attempt (or the next model) may succeed
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            media_type="application/json",
            headers=self.headers,
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


def unavailable(message: str, code: str = "service_unavailable") -> GatewayError:
    return GatewayError(503, message, type="service_unavailable", code=code)


def upstream_error(message: str, status: int = 502, code: str = "upstream_error") -> GatewayError:
    """A provider failed (connection, timeout, 5xx, bad answer): worth a fallback."""
    return GatewayError(status, message, type="upstream_error", code=code, retryable=True)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def handle_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response()


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return GatewayError(exc.status_code, str(exc.detail), code=code, headers=exc.headers).response()


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    return GatewayError(
        500, "The gateway hit an internal error.", type="internal_error", code="internal_error"
    ).response()
