"""What the provider adapters use of an HTTP client, as protocols.

`gateway.providers.upstream.Upstream` (the gateway's own HTTP/1.1 client,
bounded) is the one the gateway runs with; anything with the same three calls
will do, such as an in-memory client that answers from recorded payloads in
tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """An answer read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class LineStream(Protocol):
    """A streamed 2xx answer, open."""

    def lines(self) -> AsyncIterator[bytes]:
        """Each line with its b"\\n" (the last one may lack it); a failure to
        read is a GatewayError."""
        ...

    def close(self) -> None:
        """Drops the connection; may be called more than once."""
        ...


class Transport(Protocol):
    """Failures to reach the provider are GatewayErrors; any answer that arrives,
    whatever its status, is returned."""

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamResponse: ...

    async def get(
        self, url: str, headers: Mapping[str, str], *, provider: str
    ) -> UpstreamResponse: ...

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> LineStream | UpstreamResponse:
        """A 2xx answer comes back open; any other is read whole."""
        ...
