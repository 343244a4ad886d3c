"""The bare passthrough: the ceiling for a Python proxy on this stack.

A Starlette app that forwards ``POST /v1/chat/completions`` body bytes to the upstream with one
shared ``aiohttp.ClientSession`` and returns the upstream's bytes and status, nothing else: no
auth, no JSON parsing, no metering. The gateway is measured against it.

Configured by environment: ``BENCH_UPSTREAM`` (default ``http://127.0.0.1:9001/v1``) and
``BENCH_UPSTREAM_KEY`` (default ``sk-bench``). Served by uvicorn, one worker::

    BENCH_UPSTREAM=http://127.0.0.1:9001/v1 python -m uvicorn --app-dir bench passthrough:app \\
        --port 9002 --no-access-log --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9001/v1").rstrip("/")
CHAT_URL = UPSTREAM + "/chat/completions"
HEADERS = {
    "Authorization": "Bearer " + os.environ.get("BENCH_UPSTREAM_KEY", "sk-bench"),
    "Content-Type": "application/json",
}

_session: aiohttp.ClientSession | None = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _session
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    _session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    try:
        yield
    finally:
        await _session.close()


async def chat_completions(request: Request) -> Response:
    assert _session is not None
    body = await request.body()
    async with _session.post(CHAT_URL, data=body, headers=HEADERS) as upstream:
        data = await upstream.read()
        content_type = upstream.headers.get("Content-Type", "application/json")
        return Response(data, status_code=upstream.status, media_type=content_type)


app = Starlette(
    routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])],
    lifespan=lifespan,
)


def serve(served: Starlette) -> None:
    """Under uvicorn, one worker, uvloop and httptools, no access log, on BENCH_PORT."""
    import uvicorn

    uvicorn.run(
        served,
        host="127.0.0.1",
        port=int(os.environ.get("BENCH_PORT", "9002")),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    serve(app)
