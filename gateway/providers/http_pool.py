"""The keep-alive connections to providers, per origin (see
gateway.providers.http1 for what a request is and how one fails)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

from gateway.providers.http1 import (
    ConnectFailed,
    Disconnected,
    Origin,
    Timeouts,
    request_head,
    split_url,
)
from gateway.providers.http_connection import Connection, Response


class Pool:
    """Keep-alive connections per origin, the most recently used first."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        keepalive: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = loop
        self.keepalive = keepalive
        self._idle: dict[Origin, list[Connection]] = {}
        self._tls = tls  # the system's trusted roots unless given

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> Response:
        origin, target = split_url(url)
        length = None if body is None else len(body)
        head = request_head(method, origin, target, headers, length)
        deadline = None if timeouts.total is None else self.loop.time() + timeouts.total
        connection = self._take(origin)
        if connection is not None:
            try:
                return await connection.exchange(head, body or b"", timeouts, deadline)
            except Disconnected:
                if connection.answered:
                    raise
                # Closed by the provider while idle in the pool: once more, on a new one.
        connection = await self._open(origin, timeouts, deadline)
        return await connection.exchange(head, body or b"", timeouts, deadline)

    def _take(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
                connection.idle_timer = None
            if (
                not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
            ):
                return connection
        return None

    async def _open(self, origin: Origin, timeouts: Timeouts, deadline: float | None) -> Connection:
        limit = timeouts.connect
        if deadline is not None:
            left = max(0.0, deadline - self.loop.time())
            limit = left if limit is None else min(limit, left)
        tls = self._tls_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(limit):
                _, protocol = await self.loop.create_connection(
                    lambda: Connection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {origin.host}:{origin.port} ({exc})") from exc
        return protocol

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def put_back(self, connection: Connection) -> None:
        connection.idle_timer = self.loop.call_later(self.keepalive, connection.close)
        self._idle.setdefault(connection.origin, []).append(connection)

    def forget(self, connection: Connection) -> None:
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
