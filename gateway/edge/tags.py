"""What the gateway notes on a request's ASGI scope as it enters: its id (the
one its answer, its log line and its ledger row carry) and the dialect its
errors are written in. Read by whatever renders an error further in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from starlette.types import Message, Send

Dialect = Literal["openai", "anthropic"]

REQUEST_ID = "gateway.request_id"
DIALECT = "gateway.dialect"


def request_id_of(scope: Mapping[str, object]) -> str | None:
    request_id = scope.get(REQUEST_ID)
    return request_id if isinstance(request_id, str) else None


def dialect_of(scope: Mapping[str, object]) -> Dialect:
    return "anthropic" if scope.get(DIALECT) == "anthropic" else "openai"


def id_headers(request_id: str, dialect: Dialect) -> dict[str, str]:
    """The headers naming a request's id: Anthropic's SDK reads `request-id`."""
    if dialect == "anthropic":
        return {"x-request-id": request_id, "request-id": request_id}
    return {"x-request-id": request_id}


def sending_headers(send: Send, headers: Iterable[tuple[bytes, bytes]]) -> Send:
    """`send`, with `headers` added to the answer's start."""
    extra = list(headers)

    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return tagged
