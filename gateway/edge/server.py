"""The one uvicorn configuration the gateway runs under, for `gateway serve` and
the tests alike: the guarded protocol (gateway.edge.connections), its limits from
the settings, and a connection cap that fits the process's open-file limit."""

from __future__ import annotations

import logging
import resource
from typing import Any

from starlette.types import ASGIApp

from gateway.edge.connections import (
    ConnectionGuard,
    EdgeLimits,
    GatewayConfig,
    GuardedHttpToolsProtocol,
)
from gateway.settings import Settings

log = logging.getLogger("gateway")

# Descriptors the process needs besides client and upstream sockets: the
# listening socket, the event loop's own, SQLite's files, logs, the tokenizer.
OWN_FILES = 64
# The derived cap's ceiling: each connection may make the server hold a whole
# request head (GATEWAY_MAX_HEADER_BYTES), so the cap also bounds that memory.
DEFAULT_MAX_CONNECTIONS = 10_000


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit to %d: %s", target, exc)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_budget(open_files: int, configured: int = 0) -> tuple[int, int]:
    """(client connection cap, listen backlog) for an open-file limit.

    The connections accepted in one burst (at most the backlog) exist before
    the cap can evict for them, and each client connection with a request in
    progress may hold one upstream socket: the limit must cover
    OWN_FILES + backlog + 2 x cap. A new connection is evicted only after `cap`
    newer ones arrive, and at most two bursts arrive before its head is read,
    so the backlog stays at most half the cap; it is still as large as that
    allows, because a full listen queue drops a client's SYN and costs it a
    one-second retransmit."""
    room = open_files - OWN_FILES
    backlog = max(16, min(2048, room // 6))
    cap = min(configured or DEFAULT_MAX_CONNECTIONS, max(1, (room - backlog) // 2))
    return cap, max(16, min(backlog, cap // 2))


def uvicorn_config(app: ASGIApp, settings: Settings, **options: Any) -> GatewayConfig:
    """`options` are uvicorn's own (host, port, log_level, ...)."""
    open_files = raise_open_file_limit()
    cap, backlog = connection_budget(open_files, settings.max_connections)
    if settings.max_connections > cap:
        log.warning(
            "GATEWAY_MAX_CONNECTIONS=%d does not fit the open-file limit (%d): using %d",
            settings.max_connections,
            open_files,
            cap,
        )
    limits = EdgeLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
    )
    return GatewayConfig(
        app,
        limits=limits,
        guard=ConnectionGuard(cap),
        http=GuardedHttpToolsProtocol,
        ws="none",  # the gateway serves no websocket
        backlog=backlog,
        workers=1,
        access_log=False,  # the gateway's own request log (gateway.requests) replaces it
        server_header=False,  # no `server: uvicorn` on every answer
        **options,
    )
