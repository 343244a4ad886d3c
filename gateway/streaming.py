"""A metered SSE response, written as a plain ASGI callable.

It relays the provider's chunks, then settles: the ledger row commits before
the last bytes (`[DONE]`) leave, and the final usage chunk carries the cost
when the client asked for usage. A watcher listens for the client going away;
then the relay is cancelled, the upstream connection dropped, and the request
charged for what was generated, counted from the text relayed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send

from billing.pricing import Usage, cost_nano
from gateway.errors import GatewayError
from gateway.pipeline import Admitted, charged, counted_usage, ledger_entry, settle, usage_body
from gateway.providers.base import ChatStream
from gateway.services import Services
from gateway.sse import DONE, event

log = logging.getLogger("gateway.stream")


class Framing(Protocol):
    """How a stream is written for the client: OpenAI chunks as they are, or
    translated into another dialect (Anthropic's events for /v1/messages)."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def end(self, usage: Usage, cost: int) -> bytes:
        """The last bytes, once the ledger row is committed."""
        ...

    def failed(self, error: GatewayError) -> bytes: ...


class OpenAIFraming:
    def __init__(
        self,
        admitted: Admitted,
        *,
        include_usage: bool,
        chunk_object: str = "chat.completion.chunk",
    ) -> None:
        self._admitted = admitted
        self._include_usage = include_usage
        self._object = chunk_object  # "text_completion" for the legacy /v1/completions
        self._last: dict[str, Any] = {}

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not self._include_usage:
            chunk.pop("usage", None)
        self._last = chunk
        return event(chunk)

    def end(self, usage: Usage, cost: int) -> bytes:
        if not self._include_usage:
            return DONE
        last = self._last
        final = {
            "id": last.get("id", self._admitted.request_id),
            "object": self._object,
            "created": last.get("created", 0),
            "model": self._admitted.model.model_id,
            "choices": [],
            "usage": usage_body(usage, cost),
        }
        return event(final) + DONE

    def failed(self, error: GatewayError) -> bytes:
        return event(error.body())


class MeteredStream:
    def __init__(
        self,
        services: Services,
        admitted: Admitted,
        stream: ChatStream,
        *,
        framing: Framing,
        headers: dict[str, str],
    ) -> None:
        self._services = services
        self._admitted = admitted
        self._stream = stream
        self._framing = framing
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        headers += [(k.encode(), v.encode()) for k, v in self._headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        relay = asyncio.ensure_future(self._relay(send))
        watch = asyncio.ensure_future(_client_gone(receive))
        await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
        if not relay.done():
            relay.cancel()
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay

    async def _relay(self, send: Send) -> None:
        stream, admitted, framing = self._stream, self._admitted, self._framing
        failure: GatewayError | None = None
        try:
            async for chunk in stream.chunks:
                body = framing.chunk(chunk)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            self._charge_for_what_was_relayed()
            raise
        except GatewayError as exc:
            failure = exc  # the provider failed mid-stream: charge what was relayed
        usage = stream.usage or counted_usage(self._services, admitted, stream.text)
        try:
            cost, _ = await settle(self._services, admitted, usage)
        except GatewayError as exc:
            failure = exc
        tail = framing.failed(failure) if failure is not None else framing.end(usage, cost)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _charge_for_what_was_relayed(self) -> None:
        stream, admitted = self._stream, self._admitted
        if stream.close is not None:
            stream.close()
        usage = stream.usage or counted_usage(self._services, admitted, stream.text)
        cost = cost_nano(usage, admitted.prices)
        charged(admitted, usage, cost)
        entry = ledger_entry(admitted, usage, cost)
        self._services.meter.settle_nowait(admitted.hold, entry)
        log.info(
            "client left %s mid-stream; charged %d tokens",
            admitted.request_id,
            usage.completion_tokens,
        )


async def _client_gone(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
