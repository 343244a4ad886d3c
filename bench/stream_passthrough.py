"""The bare streaming passthrough: the ceiling for a Python proxy of streamed replies.

A Starlette app that forwards ``POST /v1/chat/completions`` body bytes to the upstream with one
shared ``aiohttp.ClientSession`` and relays the upstream's body chunks as they arrive
(``StreamingResponse`` over ``iter_any``), with the upstream's status and content type, nothing
else: no auth, no JSON parsing, no metering. The gateway's streams are measured against it.

Configured by environment, as ``passthrough.py``: ``BENCH_UPSTREAM`` (default
``http://127.0.0.1:9001/v1``) and ``BENCH_UPSTREAM_KEY`` (default ``sk-bench``). Served by
uvicorn, one worker::

    BENCH_UPSTREAM=http://127.0.0.1:9001/v1 python -m uvicorn --app-dir bench \\
        stream_passthrough:app --port 9002 --no-access-log --loop uvloop --http httptools
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from nofile import raise_open_file_limit
from passthrough import CHAT_URL, HEADERS, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_session: aiohttp.ClientSession | None = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _session
    raise_open_file_limit()  # one client socket and one upstream socket per stream
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    # No total timeout: a stream lasts as long as the upstream keeps sending.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    _session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
    try:
        yield
    finally:
        await _session.close()


async def _relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for data in upstream.content.iter_any():
            yield data
    finally:
        upstream.release()  # back to the pool, or closed when the body was not read to the end


async def chat_completions(request: Request) -> Response:
    assert _session is not None
    body = await request.body()
    upstream = await _session.post(CHAT_URL, data=body, headers=HEADERS)
    content_type = upstream.headers.get("Content-Type", "application/json")
    # The content type as the upstream sent it (media_type would add a charset to text/*).
    return StreamingResponse(
        _relay(upstream), status_code=upstream.status, headers={"Content-Type": content_type}
    )


app = Starlette(
    routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])],
    lifespan=lifespan,
)


if __name__ == "__main__":
    serve(app)
