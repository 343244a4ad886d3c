"""The keep-alive connections to providers, per origin (see
gateway.providers.http1 for what a request is and how one fails)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
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

# How long a host's addresses are used before they are looked up again.
DNS_TTL = 300.0
Address = tuple[str, int]


class Addresses:
    """Each host's addresses, looked up once per `ttl` seconds, and once for all the
    connections that wait for the same lookup: a burst of new connections to a
    provider costs one lookup, not one each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ttl: float = DNS_TTL) -> None:
        self._loop = loop
        self._ttl = ttl
        self._known: dict[Address, tuple[float, list[Address]]] = {}
        self._pending: dict[Address, asyncio.Task[list[Address]]] = {}

    async def of(self, host: str, port: int) -> list[Address]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [(host, port)]
        known = self._known.get((host, port))
        if known is not None and known[0] > self._loop.time():
            return known[1]
        lookup = self._pending.get((host, port))
        if lookup is None:
            lookup = self._pending[(host, port)] = self._loop.create_task(self._look_up(host, port))
            # Retrieved here should every waiter have gone: never an unretrieved error.
            lookup.add_done_callback(lambda done: done.cancelled() or done.exception())
        # A waiter that gives up (its deadline, its client gone) leaves the lookup to the others.
        return await asyncio.shield(lookup)

    def forget(self, host: str, port: int) -> None:
        """None of the addresses answered: look the host up again next time."""
        self._known.pop((host, port), None)

    async def _look_up(self, host: str, port: int) -> list[Address]:
        try:
            found = await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        finally:
            self._pending.pop((host, port), None)
        addresses = list(dict.fromkeys((str(info[4][0]), int(info[4][1])) for info in found))
        if not addresses:
            raise OSError(f"no address for {host}")
        self._known[(host, port)] = (self._loop.time() + self._ttl, addresses)
        return addresses


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
        # In the order they went idle (a dict: a connection closing leaves in O(1)).
        self._idle: dict[Origin, dict[Connection, None]] = {}
        self._tls = tls  # the system's trusted roots unless given
        self.addresses = Addresses(loop)

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
            connection, _ = idle.popitem()  # the most recently used
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
        failure: Exception | None = None
        async with asyncio.timeout(limit):
            try:
                addresses = await self.addresses.of(origin.host, origin.port)
            except OSError as exc:
                raise ConnectFailed(f"cannot look up {origin.host} ({exc})") from exc
            for host, port in addresses:  # in the order the resolver gave them
                try:
                    _, protocol = await self.loop.create_connection(
                        lambda: Connection(self, origin),
                        host,
                        port,
                        ssl=tls,
                        server_hostname=origin.host if tls else None,
                    )
                    return protocol
                except (OSError, ssl.SSLError) as exc:
                    failure = exc
        self.addresses.forget(origin.host, origin.port)
        raise ConnectFailed(
            f"cannot connect to {origin.host}:{origin.port} ({failure})"
        ) from failure

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def put_back(self, connection: Connection) -> None:
        connection.idle_timer = self.loop.call_later(self.keepalive, connection.close)
        self._idle.setdefault(connection.origin, {})[connection] = None

    def forget(self, connection: Connection) -> None:
        idle = self._idle.get(connection.origin)
        if idle:
            idle.pop(connection, None)

    def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
