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
from gateway.edge.tags import DIALECT, REQUEST_ID, Dialect, id_headers
from gateway.errors import GatewayError, internal_error
from gateway.observe import CURRENT, RequestRecord, request_log
from gateway.proxy.auth import authenticate
from gateway.proxy.core import Core
from gateway.services import Services

Reply = tuple[bytes, Mapping[str, str]] | ASGIApp
Handler = Callable[[Core, Headers, bytes], Awaitable[Reply]]
_JSON = (b"content-type", b"application/json")
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


def metered(path: str, handler: Handler, *, dialect: Dialect = "openai") -> Route:
    """A metered POST route: its endpoint answers in plain ASGI (see ApiEndpoint)."""
    return Route(path, ApiEndpoint(path, handler, dialect), methods=["POST"])


class ApiEndpoint:
    def __init__(self, route: str, handler: Handler, dialect: Dialect = "openai") -> None:
        self.route = route  # the path template, the metrics' label
        self.dialect = dialect  # how its errors are written
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        record = RequestRecord(self.route, request_id=services.request_ids.next())
        # For the edge, should the body time out while this endpoint reads it.
        scope[REQUEST_ID], scope[DIALECT] = record.request_id, self.dialect
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
            return await self._refuse(send, exc, record.request_id)
        except Exception as exc:  # nothing was sent yet: answer 500, never a traceback
            log.error("unhandled %s on %s", type(exc).__name__, scope["path"], exc_info=exc)
            record.error_code = "internal_error"
            return await self._refuse(send, internal_error(), record.request_id)
        if isinstance(reply, tuple):
            payload, reply_headers = reply
            # A metered answer's receipt names the id already; Anthropic's name it twice.
            if self.dialect != "openai" or "x-request-id" not in reply_headers:
                reply_headers = {**reply_headers, **id_headers(record.request_id, self.dialect)}
            await send_json(send, 200, payload, reply_headers)
        else:  # a stream names its request id itself
            await reply(scope, receive, send)
        return 200

    async def _refuse(self, send: Send, error: GatewayError, request_id: str) -> int:
        status, payload = error.render(self.dialect, request_id)
        headers = {**error.headers, **id_headers(request_id, self.dialect)}
        await send_json(send, status, payload, headers)
        return status
