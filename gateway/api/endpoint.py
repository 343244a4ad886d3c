"""A route endpoint for the metered routes, in plain ASGI.

The data plane's routes skip Starlette's Request and Response objects: the
caller is authenticated from the headers alone, then the body is read straight
from `receive` (within the body limit, gateway.edge.request_body), a JSON reply goes
out as two ASGI messages with prebuilt headers, a GatewayError becomes its
OpenAI-shaped answer here and anything unexpected a 500. A handler returns
either `(payload, headers)` for a 200 JSON reply or an ASGI app (a stream)
that answers by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.edge.request_body import read_body
from gateway.errors import GatewayError
from gateway.observe import CURRENT, RequestRecord, request_log
from gateway.proxy.auth import authenticate
from gateway.proxy.core import Core
from gateway.services import Services

Reply = tuple[bytes, Mapping[str, str]] | ASGIApp
Handler = Callable[[Core, Headers, bytes], Awaitable[Reply]]
_JSON = (b"content-type", b"application/json")
_INTERNAL = orjson.dumps(
    GatewayError(
        500, "The gateway hit an internal error.", type="internal_error", code="internal_error"
    ).body()
)
log = logging.getLogger("gateway.errors")


async def check_caller(services: Services, headers: Headers) -> None:
    """Refuse a request before a byte of its body is read when nothing could be
    billed (503) or its key is not valid (401): an unauthenticated caller costs
    no body read, no parse, and learns nothing from the gateway's checks."""
    await services.ensure_ledger()
    authenticate(headers, services.cache.snapshot)


async def send_json(send: Send, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    raw += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class JSON(Response):
    """A JSON reply for the routes that go through Starlette (admin, listings)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def metered(path: str, handler: Handler) -> Route:
    """A metered POST route: its endpoint answers in plain ASGI (see ApiEndpoint)."""
    return Route(path, ApiEndpoint(path, handler), methods=["POST"])


class ApiEndpoint:
    def __init__(self, route: str, handler: Handler) -> None:
        self.route = route  # the path template, the metrics' label
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        record = RequestRecord(self.route)
        token = CURRENT.set(record)
        try:
            record.status = await self._answer(services, scope, receive, send, record)
        finally:
            CURRENT.reset(token)
            services.metrics.finished(record, services.cache.labels)
            if request_log.isEnabledFor(logging.INFO):
                request_log.info(record.line().decode())

    async def _answer(
        self, services: Services, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> int:
        headers = Headers(scope=scope)
        try:
            await check_caller(services, headers)
            body = await read_body(receive, headers, services.settings.max_body_bytes)
            reply = await self._handler(services.core, headers, body)
        except ClientDisconnect:
            record.error_code = "client_disconnected"
            return 499  # nobody is left to answer
        except GatewayError as exc:
            record.error_code = exc.code
            await send_json(send, exc.status, orjson.dumps(exc.body()), exc.headers)
            return exc.status
        except Exception as exc:  # nothing was sent yet: answer 500, never a traceback
            log.error("unhandled %s on %s", type(exc).__name__, scope["path"], exc_info=exc)
            record.error_code = "internal_error"
            await send_json(send, 500, _INTERNAL, {})
            return 500
        if isinstance(reply, tuple):
            await send_json(send, 200, *reply)
        else:
            await reply(scope, receive, send)
        return 200
