"""One keep-alive connection to a provider, as an asyncio protocol fed to
httptools' parser, and the response read from it piece by piece (see
gateway.providers.http1 for the errors and deadlines)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.providers.http1 import MAX_HEAD_BYTES, BadAnswer, Disconnected, Origin, Timeouts

if TYPE_CHECKING:
    from gateway.providers.http_pool import Pool

# Buffered and unread, a response stops reading from its socket past HIGH
# bytes and starts again below LOW: a slow reader holds the provider back
# rather than the gateway's memory growing.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class Response:
    """An answer whose head has arrived: its status and headers, and its body
    read piece by piece. `release()` when done with it (or `close()`)."""

    def __init__(self, connection: Connection, status: int, headers: CIMultiDictProxy[str]) -> None:
        self.status = status
        self.headers = headers
        self._connection: Connection | None = connection

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def read_piece(self) -> bytes | None:
        """The next piece of the body as it arrived; None at its end."""
        if self._connection is None:
            raise Disconnected("the response was closed")
        return await self._connection.next_piece()

    def release(self) -> None:
        """Back to the pool if the answer was read to its end, else closed.
        The response is done with its connection either way."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.done_with()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class Connection(asyncio.Protocol):
    """One connection to an origin, one exchange at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_timer: asyncio.TimerHandle | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._head_bytes = 0
        self._head_done = False
        self._status = 0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._delimited_by_close = False
        self._keep = False
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: float | None = None
        self._read_timeout: float | None = None
        # One timer per exchange, moved on only when it fires: bytes arriving and
        # waits beginning just note the time.
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0  # when bytes last arrived
        self._waiting_since = 0.0  # when the reader began its current wait
        self.answered = False  # a byte of the answer arrived
        self.busy = False  # an exchange is under way

    # The exchange, as the caller sees it.

    async def exchange(
        self, head: bytes, body: bytes, timeouts: Timeouts, deadline: float | None
    ) -> Response:
        self._reset()
        self.busy = True
        self._deadline, self._read_timeout = deadline, timeouts.read
        self._last_read = self._waiting_since = self.loop.time()
        self._arm()
        assert self.transport is not None
        try:
            self.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.transport.write(body)
        except (RuntimeError, OSError) as exc:  # closed under us: as if the provider had
            self.close()
            raise Disconnected(
                f"the connection closed before the request was sent ({exc})"
            ) from exc
        while not self._head_done:
            await self._wait()
        headers = CIMultiDictProxy(self._headers)
        return Response(self, self._status, headers)

    async def next_piece(self) -> bytes | None:
        while not self._pieces:
            if self._complete:
                return None
            await self._wait()
        piece = self._pieces.popleft()
        self._buffered -= len(piece)
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return piece

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        now = self._waiting_since = self.loop.time()
        if self._deadline is not None and now >= self._deadline:
            self.close()
            raise TimeoutError()
        if self._timer is None:
            self._arm()
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        except BaseException:
            self.close()  # cancelled or timed out mid-answer: the connection is no use
            raise
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _limit(self) -> float | None:
        """When the current wait times out: `read` seconds after the later of the
        last bytes and the start of the wait, or the exchange's deadline."""
        if self._read_timeout is None:
            return self._deadline
        read = max(self._last_read, self._waiting_since) + self._read_timeout
        return read if self._deadline is None else min(read, self._deadline)

    def _arm(self) -> None:
        limit = self._limit()
        if limit is not None:
            self._timer = self.loop.call_at(limit, self._check_time)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_time(self) -> None:
        self._timer = None
        if not self.busy or self._complete or self._error is not None:
            return
        waiter = self._waiter
        now = self.loop.time()
        if waiter is None:
            # Nobody is waiting: the reader is slow, not the provider. The next
            # wait arms the timer again (and times out at once past the deadline).
            return
        limit = self._limit()
        if limit is not None and limit - now > 0.001:
            self._timer = self.loop.call_at(limit, self._check_time)
        elif not waiter.done():
            waiter.set_exception(TimeoutError())

    def done_with(self) -> None:
        self.busy = False
        self._disarm()
        if self._complete and self._error is None and not self.closed and self._keep_alive():
            self._pool.put_back(self)
        else:
            self.close()

    def _keep_alive(self) -> bool:
        return self._keep

    def close(self) -> None:
        self._disarm()
        if not self.closed:
            self.closed = True
            if self.idle_timer is not None:
                self.idle_timer.cancel()
                self.idle_timer = None
            if self.transport is not None:
                self.transport.close()
        self._fail(Disconnected("the connection was closed"))

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's; they do what it declares.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy or self._complete:
            self.close()  # bytes nobody asked for: while idle, or past the answer's end
            return
        self.answered = True
        self._last_read = self.loop.time()
        if self._head_done:
            self._feed(data)
            return
        # The head is fed no further than its bound, so the parser never holds more.
        room = MAX_HEAD_BYTES - self._head_bytes
        piece, rest = data[:room], data[room:]
        self._head_bytes += len(piece)
        self._feed(piece)
        if self._error is not None or not rest:
            return
        if self.head_arrived:  # the rest is the body's
            self._feed(rest)
        else:
            self._fail(BadAnswer(f"a head larger than {MAX_HEAD_BYTES} bytes"))

    @property
    def head_arrived(self) -> bool:
        return self._head_done

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("an answer that switches protocols"))
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"an answer that is not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self._pool.forget(self)
        if exc is None and self._head_done and self._delimited_by_close and not self._complete:
            self._complete = True  # a body without a length ends when the connection does
            self._wake()
            return
        self._fail(Disconnected("the provider closed the connection"))

    def pause_writing(self) -> None:  # the request body is written whole; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if 100 <= self._status < 200:
            self._fail(BadAnswer(f"an interim answer {self._status}"))
            return
        self._head_done = True
        chunked = "chunked" in self._headers.get("Transfer-Encoding", "").lower()
        sized = chunked or "Content-Length" in self._headers or self._status in (204, 304)
        self._delimited_by_close = not sized
        # Asked now: once the message is complete the parser has moved on.
        self._keep = not self._delimited_by_close and self._parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._pieces.append(body)
        self._buffered += len(body)
        if not self._paused and self._buffered > HIGH_WATER and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        self._disarm()
        self._wake()

    # Waking the reader

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._disarm()
        if self._error is None and not self._complete:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._error or error)
        if not self.closed:
            self.closed = True
            self._pool.forget(self)
            if self.transport is not None:
                self.transport.close()
