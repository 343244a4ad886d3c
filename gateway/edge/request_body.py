"""The request-body limit, for both ways a request reaches the app.

The metered routes read their body through `read_body`; every other route
goes through Starlette, in front of which `BodyLimit` watches `receive`. Either
way a body that declares too many bytes is refused before any of it is read,
and one that does not declare its size (chunked) is refused as soon as the
bytes read pass the limit, so a too-large body never costs more memory than
the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.tags import dialect_of, request_id_of
from gateway.errors import GatewayError


def request_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than the gateway accepts ({limit} bytes).",
        code="request_too_large",
    )


def declared_length(headers: Headers) -> int | None:
    """The Content-Length a client declared, if any (the HTTP parser has
    already refused a malformed one)."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole body, or GatewayError 413 as soon as it is known to exceed `limit`;
    ClientDisconnect when the client goes away before it is complete."""
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        raise request_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise request_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyLimit:
    """Pure ASGI middleware: the same limit for the routes Starlette serves.
    Past the limit, `receive` raises the 413 GatewayError, which Starlette's
    exception handlers answer like any other."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(Headers(scope=scope))
        if declared is not None and declared > self.max_bytes:
            refusal = request_too_large(self.max_bytes)
            await refusal.response(dialect_of(scope), request_id_of(scope))(scope, receive, send)
            return
        limit = self.max_bytes
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise request_too_large(limit)
            return message

        await self.app(scope, bounded_receive, send)
