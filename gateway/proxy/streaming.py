"""A metered SSE response, written as a plain ASGI callable.

It relays the provider's chunks, then settles: the ledger row commits before
the last bytes (`[DONE]`) leave, and the final usage chunk carries the cost
when the client asked for usage. A watcher listens for the client going away;
then the relay is cancelled, the upstream connection dropped, and the request
charged for what was generated.

Every way a stream can end is an end the client understands: whatever the
upstream sends or does (a malformed chunk, bad bytes, an error event, a cut, a
hang) ends the stream with an error event, and the request is charged with the
provider's usage figures so far plus our count of the output relayed. The hold
always ends, charged or released, on every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.errors import GatewayError, upstream_error
from gateway.providers.base import ChatStream
from gateway.proxy.admitted import Admitted, Settled
from gateway.proxy.core import Core
from gateway.proxy.settlement import charge_for, ledger_entry, settle

log = logging.getLogger("gateway.stream")


class Framing(Protocol):
    """How a stream is written for the client, implemented by each dialect
    (`gateway.dialects`): fed the internal (OpenAI) chunks one at a time, it
    returns the bytes to send for each."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def end(self, charge: Charge, prices: Prices) -> bytes:
        """The last bytes, once the ledger row is committed: `charge` at `prices`."""
        ...

    def failed(self, error: GatewayError) -> bytes:
        """The last bytes of a stream that failed: an error the client's dialect reads."""
        ...


class MeteredStream:
    def __init__(
        self,
        core: Core,
        admitted: Admitted,
        stream: ChatStream,
        *,
        framing: Framing,
        headers: dict[str, str],
    ) -> None:
        self._core = core
        self._admitted = admitted
        self._stream = stream
        self._framing = framing
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        headers += [(k.encode(), v.encode()) for k, v in self._headers.items()]
        relay = asyncio.ensure_future(self._relay(send, headers))
        watch = asyncio.ensure_future(_client_gone(receive))
        try:
            await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not relay.done():
                relay.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            self._core.meter.release(self._admitted.hold)  # a no-op once settled

    async def _relay(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        stream, framing = self._stream, self._framing
        failure: GatewayError | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in stream.chunks:
                body = framing.chunk(chunk)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            self._charge_for_what_was_relayed()
            raise
        except GatewayError as exc:
            failure = exc  # the provider failed mid-stream: charge what was relayed
        except Exception as exc:  # a fault of ours: the client still gets a clean end
            log.error("stream %s failed", self._admitted.request_id, exc_info=exc)
            failure = upstream_error("The stream failed in the gateway.")
        if failure is not None and stream.close is not None:
            stream.close()
        complete = failure is None and stream.usage_complete
        settled: Settled | None = None
        try:
            # Shielded: a client leaving now does not undo a charge half made.
            settled = await asyncio.shield(
                settle(
                    self._core,
                    self._admitted,
                    stream.usage,
                    lambda: stream.text,
                    complete=complete,
                )
            )
        except GatewayError as exc:
            failure = exc
        if failure is not None or settled is None:
            tail = framing.failed(failure or upstream_error("The stream could not be settled."))
        else:
            tail = framing.end(settled.charge, settled.prices)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _charge_for_what_was_relayed(self) -> None:
        """The client went away: charge what was generated, without waiting."""
        stream, admitted, core = self._stream, self._admitted, self._core
        if stream.close is not None:
            stream.close()
        if not admitted.hold.open:
            return  # already settled
        try:
            billed = charge_for(core, admitted, stream.usage, lambda: stream.text, complete=False)
            core.meter.settle_nowait(admitted.hold, ledger_entry(admitted, billed))
        except Exception as exc:  # never let the charge's failure hide the cancellation
            log.error("stream %s: charge failed", admitted.request_id, exc_info=exc)
            core.meter.release(admitted.hold)
            return
        log.info(
            "client left %s mid-stream; charged %d output tokens",
            admitted.request_id,
            billed.usage.completion_tokens,
        )


async def _client_gone(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
