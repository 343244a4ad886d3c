"""The outbound HTTP client: one pool of keep-alive connections per process.

The client is the gateway's own (gateway.providers.http1, on httptools): a
general client costs several times the CPU per call that a proxy of JSON
needs (see bench/). Its exceptions become GatewayError here, where they enter,
so no caller sees them.

What a provider sends is bounded: an answer read whole to `max_body_bytes`, a
stream to `max_line_bytes` a line and `max_stream_bytes` in all, decoded. The
gateway asks for `identity`; a compressed answer is decoded a piece at a time
within the same bounds (gateway.providers.bounded_decoding).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

from gateway.errors import GatewayError, upstream_error
from gateway.providers.bounded_decoding import (
    BoundedDecoder,
    BoundedLines,
    DecodingError,
    TooLarge,
)
from gateway.providers.http1 import BadAnswer, ConnectFailed, Disconnected, HttpError, Timeouts
from gateway.providers.http_connection import Response
from gateway.providers.http_pool import Pool
from gateway.providers.transport import UpstreamResponse


class UpstreamStream:
    """An open streaming response whose status was 2xx; iterate its lines."""

    def __init__(
        self,
        response: Response,
        provider: str,
        decoder: BoundedDecoder,
        max_line_bytes: int,
    ) -> None:
        self._response = response
        self._provider = provider
        self._decoder = decoder
        self._max_line_bytes = max_line_bytes

    @property
    def status(self) -> int:
        return self._response.status

    async def lines(self) -> AsyncIterator[bytes]:
        """Each line with its b"\\n" (the last one may lack it)."""
        splitter = BoundedLines(self._max_line_bytes)
        response = self._response
        try:
            while (raw := await response.read_piece()) is not None:
                for piece in self._decoder.feed(raw):
                    for line in splitter.feed(piece):
                        yield line
            self._decoder.finish()
        except (TimeoutError, HttpError, DecodingError) as exc:
            response.close()
            raise _translate(exc, self._provider) from exc
        response.release()
        last = splitter.finish()
        if last:
            yield last

    def close(self) -> None:
        self._response.close()


def _translate(exc: BaseException, provider: str) -> GatewayError:
    if isinstance(exc, TooLarge):
        return upstream_error(f"The provider '{provider}' sent an answer with {exc}.")
    if isinstance(exc, DecodingError | BadAnswer):
        return upstream_error(f"The provider '{provider}' sent {exc}.")
    if isinstance(exc, asyncio.TimeoutError):
        return upstream_error(
            f"The provider '{provider}' did not answer in time.", 504, "upstream_timeout"
        )
    if isinstance(exc, ConnectFailed):
        return upstream_error(f"Could not connect to the provider '{provider}'.")
    if isinstance(exc, Disconnected):
        return upstream_error(f"The provider '{provider}' closed the connection.")
    return upstream_error(
        f"The request to the provider '{provider}' failed ({type(exc).__name__})."
    )


TimeoutsFor = Callable[[str], Timeouts | None]


class Upstream:
    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        total_timeout: float = 600.0,
        timeouts_for: TimeoutsFor | None = None,
        max_body_bytes: int = 64 << 20,
        max_line_bytes: int = 8 << 20,
        max_stream_bytes: int = 256 << 20,
    ) -> None:
        self._timeout = Timeouts(
            connect=connect_timeout or None,
            read=read_timeout or None,  # a hung upstream ends, mid-stream too
            total=total_timeout or None,
        )
        # A provider's own timeouts, looked up by its id; None means the defaults.
        self.timeouts_for: TimeoutsFor = timeouts_for or (lambda _: None)
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.max_stream_bytes = max_stream_bytes
        self._pool: Pool | None = None

    async def start(self) -> None:
        if self._pool is None:
            self._pool = Pool(asyncio.get_running_loop(), keepalive=30.0)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._pool

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamResponse:
        return await self._whole("POST", url, headers, body, provider)

    async def get(self, url: str, headers: Mapping[str, str], *, provider: str) -> UpstreamResponse:
        return await self._whole("GET", url, headers, None, provider)

    async def _whole(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, provider: str
    ) -> UpstreamResponse:
        timeouts = self.timeouts_for(provider) or self._timeout
        try:
            response = await self.pool.request(method, url, headers, body, timeouts)
            return await self._read(response)
        except (TimeoutError, HttpError, DecodingError) as exc:
            raise _translate(exc, provider) from exc

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamStream | UpstreamResponse:
        """A 2xx answer comes back open, as a stream; any other is read whole."""
        timeouts = self.timeouts_for(provider) or self._timeout
        try:
            response = await self.pool.request("POST", url, headers, body, timeouts)
        except (TimeoutError, HttpError) as exc:
            raise _translate(exc, provider) from exc
        if 200 <= response.status < 300:
            try:
                decoder = BoundedDecoder(
                    response.headers.get("Content-Encoding"), self.max_stream_bytes
                )
            except DecodingError as exc:
                response.close()
                raise _translate(exc, provider) from exc
            return UpstreamStream(response, provider, decoder, self.max_line_bytes)
        try:
            return await self._read(response)
        except (TimeoutError, HttpError, DecodingError) as exc:
            raise _translate(exc, provider) from exc

    async def _read(self, response: Response) -> UpstreamResponse:
        """The whole body, decoded, or DecodingError as soon as it passes the bound
        (the connection is then dropped, not drained). The connection goes back
        to the pool only when the answer was read to its end."""
        try:
            decoder = BoundedDecoder(response.headers.get("Content-Encoding"), self.max_body_bytes)
            declared = response.content_length or 0
            if decoder.encoding == "identity" and declared > self.max_body_bytes:
                raise TooLarge(f"more than {self.max_body_bytes} bytes")
            chunks: list[bytes] = []
            while (raw := await response.read_piece()) is not None:
                chunks.extend(decoder.feed(raw))
            decoder.finish()
        except BaseException:
            response.close()
            raise
        response.release()
        return UpstreamResponse(response.status, response.headers, b"".join(chunks))
