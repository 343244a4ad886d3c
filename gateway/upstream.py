"""The outbound HTTP client: one shared aiohttp session per process.

aiohttp rather than httpx on the data plane: at 50 concurrent requests through
a bare Starlette passthrough, aiohttp's client sustained roughly twenty times
httpx's throughput (see bench/). aiohttp's exceptions become GatewayError here,
where they enter, so no caller sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp

from gateway.errors import GatewayError, upstream_error


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open streaming response whose status was 2xx; iterate its lines."""

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self._provider = provider

    @property
    def status(self) -> int:
        return self._response.status

    async def lines(self) -> AsyncIterator[bytes]:
        try:
            async for line in self._response.content:
                yield line
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc, self._provider) from exc

    def close(self) -> None:
        self._response.close()


def _translate(exc: BaseException, provider: str) -> GatewayError:
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
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout or None,
            sock_connect=connect_timeout or None,
            sock_read=read_timeout or None,  # a hung upstream ends, mid-stream too
        )
        # A provider's own timeouts, looked up by its id; None means the defaults.
        self.timeouts_for: TimeoutsFor = timeouts_for or (lambda _: None)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
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
                payload = await response.read()
                return UpstreamResponse(response.status, response.headers, payload)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc, provider) from exc

    async def get(self, url: str, headers: Mapping[str, str], *, provider: str) -> UpstreamResponse:
        try:
            timeout = self.timeouts_for(provider) or self._timeout
            async with self.session.get(url, headers=headers, timeout=timeout) as response:
                payload = await response.read()
                return UpstreamResponse(response.status, response.headers, payload)
        except (TimeoutError, aiohttp.ClientError) as exc:
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
            return UpstreamStream(response, provider)
        try:
            payload = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc, provider) from exc
        finally:
            response.release()
        return UpstreamResponse(response.status, response.headers, payload)
