"""The outbound HTTP client: one shared aiohttp session per process.

aiohttp rather than httpx on the data plane: at 50 concurrent requests through
a bare Starlette passthrough, aiohttp's client sustained roughly twenty times
httpx's throughput (see bench/). aiohttp's exceptions become GatewayError here,
where they enter, so no caller sees them.

What a provider sends is bounded: an answer read whole to `max_body_bytes`, a
stream to `max_line_bytes` a line and `max_stream_bytes` in all, decoded. The
gateway asks for `identity`; a compressed answer is decoded a piece at a time
within the same bounds (gateway.providers.bounded_decoding), never by aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

from gateway.errors import GatewayError, upstream_error
from gateway.providers.bounded_decoding import (
    BoundedDecoder,
    BoundedLines,
    DecodingError,
    TooLarge,
)
from gateway.providers.transport import UpstreamResponse


class UpstreamStream:
    """An open streaming response whose status was 2xx; iterate its lines."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
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
        try:
            async for raw in self._response.content.iter_any():
                for piece in self._decoder.feed(raw):
                    for line in splitter.feed(piece):
                        yield line
            self._decoder.finish()
        except (TimeoutError, aiohttp.ClientError, DecodingError) as exc:
            raise _translate(exc, self._provider) from exc
        last = splitter.finish()
        if last:
            yield last

    def close(self) -> None:
        self._response.close()


def _translate(exc: BaseException, provider: str) -> GatewayError:
    if isinstance(exc, TooLarge):
        return upstream_error(f"The provider '{provider}' sent an answer with {exc}.")
    if isinstance(exc, DecodingError):
        return upstream_error(f"The provider '{provider}' sent {exc}.")
    if isinstance(exc, asyncio.TimeoutError):
        return upstream_error(
            f"The provider '{provider}' did not answer in time.", 504, "upstream_timeout"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return upstream_error(f"Could not connect to the provider '{provider}'.")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return upstream_error(f"The provider '{provider}' closed the connection.")
    return upstream_error(
        f"The request to the provider '{provider}' failed ({type(exc).__name__})."
    )


TimeoutsFor = Callable[[str], aiohttp.ClientTimeout | None]


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
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout or None,
            sock_connect=connect_timeout or None,
            sock_read=read_timeout or None,  # a hung upstream ends, mid-stream too
        )
        # A provider's own timeouts, looked up by its id; None means the defaults.
        self.timeouts_for: TimeoutsFor = timeouts_for or (lambda _: None)
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.max_stream_bytes = max_stream_bytes
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                # Decoding is ours, bounded; aiohttp's would expand a body without limit.
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._session

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamResponse:
        try:
            timeout = self.timeouts_for(provider) or self._timeout
            async with self.session.post(
                url, data=body, headers=headers, timeout=timeout
            ) as response:
                return await self._read(response)
        except (TimeoutError, aiohttp.ClientError, DecodingError) as exc:
            raise _translate(exc, provider) from exc

    async def get(self, url: str, headers: Mapping[str, str], *, provider: str) -> UpstreamResponse:
        try:
            timeout = self.timeouts_for(provider) or self._timeout
            async with self.session.get(url, headers=headers, timeout=timeout) as response:
                return await self._read(response)
        except (TimeoutError, aiohttp.ClientError, DecodingError) as exc:
            raise _translate(exc, provider) from exc

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamStream | UpstreamResponse:
        """A 2xx answer comes back open, as a stream; any other is read whole."""
        try:
            timeout = self.timeouts_for(provider) or self._timeout
            response = await self.session.post(url, data=body, headers=headers, timeout=timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
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
        except (TimeoutError, aiohttp.ClientError, DecodingError) as exc:
            raise _translate(exc, provider) from exc
        finally:
            response.release()

    async def _read(self, response: aiohttp.ClientResponse) -> UpstreamResponse:
        """The whole body, decoded, or DecodingError as soon as it passes the bound
        (the connection is then dropped, not drained)."""
        try:
            decoder = BoundedDecoder(response.headers.get("Content-Encoding"), self.max_body_bytes)
            declared = response.content_length or 0
            if decoder.encoding == "identity" and declared > self.max_body_bytes:
                raise TooLarge(f"more than {self.max_body_bytes} bytes")
            chunks = [
                piece async for raw in response.content.iter_any() for piece in decoder.feed(raw)
            ]
            decoder.finish()
        except DecodingError:
            response.close()
            raise
        return UpstreamResponse(response.status, response.headers, b"".join(chunks))
