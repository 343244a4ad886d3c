"""The server's side of slow and idle clients: uvicorn's httptools protocol,
with the limits uvicorn itself does not keep.

- A request head (request line and headers) larger than `max_header_bytes` is
  answered 431 and the connection closed; httptools would otherwise buffer a
  header of any size.
- A connection has `header_timeout` seconds for its next request head to
  arrive whole (from when it opened or its previous answer was sent), and
  `body_timeout` seconds from the end of the head to the body's last byte; past
  either it is closed (408 first when the request was not answered yet).
- At most `ConnectionGuard.cap` client connections are open. A new one past the
  cap evicts the connection that has waited longest without a request in
  progress (idle, or still sending its head); when every open connection is
  busy with a request, the new one is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import http
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.edge.held_head import HeldHead
from gateway.edge.tags import Dialect, dialect_of, id_headers, request_id_of
from gateway.errors import GatewayError
from gateway.proxy.ids import RequestIds


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    header_timeout: float  # 0: none
    body_timeout: float  # 0: none


class Evictable(Protocol):
    def evict(self) -> None: ...


class ConnectionGuard:
    """The open client connections of one server, and the order in which the
    ones without a request in progress may be evicted (longest waiting first)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: set[Evictable] = set()
        # Insertion order is the order in which they started waiting.
        self._waiting: dict[Evictable, None] = {}
        self.evicted = 0
        self.refused = 0

    @property
    def count(self) -> int:
        return len(self._open)

    @property
    def idle(self) -> int:
        """Open connections without a request in progress (idle or sending a head)."""
        return len(self._waiting)

    def admit(self, connection: Evictable) -> bool:
        """Count a new connection in, evicting a waiting one if the cap is reached;
        False when every open connection is busy (the new one must be refused)."""
        if len(self._open) >= self.cap:
            if not self._waiting:
                self.refused += 1
                return False
            oldest = next(iter(self._waiting))
            self.closed(oldest)
            self.evicted += 1
            oldest.evict()
        self._open.add(connection)
        return True

    def waiting(self, connection: Evictable) -> None:
        """The connection has no request in progress: it may be evicted."""
        if connection in self._open:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None

    def busy(self, connection: Evictable) -> None:
        self._waiting.pop(connection, None)

    def closed(self, connection: Evictable) -> None:
        self._open.discard(connection)
        self._waiting.pop(connection, None)


def raw_error(
    status: int,
    message: str,
    code: str,
    request_id: str,
    *,
    type: str = "invalid_request_error",
    dialect: Dialect = "openai",
) -> bytes:
    """A whole HTTP/1.1 answer with an error (OpenAI-shaped unless the request is
    known to be Anthropic's), closing the connection: for the protocol to write
    where no ASGI cycle can answer."""
    error = GatewayError(status, message, type=type, code=code)
    status, body = error.render(dialect, request_id)
    phrase = http.HTTPStatus(status).phrase
    ids = "".join(f"{name}: {value}\r\n" for name, value in id_headers(request_id, dialect).items())
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{ids}connection: close\r\n\r\n"
    )
    return head.encode() + body


class GatewayConfig(Config):
    """uvicorn's Config, carrying the limits and the connection guard of one server."""

    def __init__(self, app: Any, *, limits: EdgeLimits, guard: ConnectionGuard, **kw: Any) -> None:
        super().__init__(app, **kw)
        self.limits = limits
        self.guard = guard
        # The ids of the answers the protocol writes itself (unique beside the
        # app's: each generator has a random part of its own).
        self.request_ids = RequestIds()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GatewayConfig)
        self._limits = config.limits
        self._guard = config.guard
        self._ids = config.request_ids
        # False from a head's end to its message's end (the body); True otherwise,
        # when whatever arrives belongs to a head and counts against its limit.
        self._reading_head = True
        self._head_bytes = 0  # fed since the current head began
        self._deadline: TimerHandle | None = None

    # Connection lifetime

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._guard.admit(self):
            transport.write(
                raw_error(
                    503,
                    "The gateway has as many open connections as it can hold; try again shortly.",
                    "too_many_connections",
                    self._ids.next(),
                    type="service_unavailable",
                )
            )
            transport.close()
            return
        self._start_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.closed(self)
        self._disarm()
        super().connection_lost(exc)

    def evict(self) -> None:
        # abort, not close: an idle connection's last answer may still sit in a
        # write buffer its client never drains.
        self._disarm()
        self.transport.abort()

    # Bytes in

    def data_received(self, data: bytes) -> None:
        # A head is fed to the parser no further than the header limit allows,
        # so httptools never holds more of one than that.
        while data and not self.transport.is_closing():
            if not self._reading_head:
                super().data_received(data)
                return
            room = self._limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._refuse_head()
                return
            if len(data) <= room:
                piece, data = data, b""
            else:
                piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own answer is plain text; every error of the gateway is OpenAI-shaped.
        self._disarm()
        self._guard.closed(self)
        self.transport.write(
            raw_error(
                400, "The request is not valid HTTP/1.1.", "invalid_http_request", self._ids.next()
            )
        )
        self.transport.close()

    def _refuse_head(self) -> None:
        self._disarm()
        self._guard.closed(self)
        if self.cycle is None or self.cycle.response_complete:
            message = (
                "The request line and headers are larger than the gateway accepts "
                f"({self._limits.max_header_bytes} bytes)."
            )
            code = "request_header_fields_too_large"
            self.transport.write(raw_error(431, message, code, self._ids.next()))
            self.transport.close()
        else:  # a pipelined head while an answer is still going out: no clean way to say so
            self.transport.abort()

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._guard.busy(self)
        self._arm(self._limits.body_timeout, self._body_timed_out)
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous:  # a new request's cycle:
            # its answer's head leaves with the body's first bytes (edge.held_head)
            cycle.transport = HeldHead(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._reading_head = True
        self._disarm()
        super().on_message_complete()
        self._wait_if_idle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._wait_if_idle()

    # States and deadlines

    def _wait_if_idle(self) -> None:
        """Waiting again once the last request has been read whole and answered."""
        if not self._reading_head or self.pipeline or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._start_waiting()

    def _start_waiting(self) -> None:
        self._guard.waiting(self)
        self._arm(self._limits.header_timeout, self._head_timed_out)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        self._guard.closed(self)
        self.transport.abort()

    def _body_timed_out(self) -> None:
        self._deadline = None
        self._guard.closed(self)
        cycle = self.cycle
        if cycle is not None:
            if not cycle.response_started:
                # The request is in the app already: its answer keeps its id and dialect.
                scope = cycle.scope
                request_id = request_id_of(scope) or self._ids.next()
                message, dialect = "The request body did not arrive in time.", dialect_of(scope)
                answer = raw_error(408, message, "request_timeout", request_id, dialect=dialect)
                self.transport.write(answer)
            # What the app still sends or reads now goes nowhere: the client is gone.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
