"""A fake upstream that plays scripts: for faults no well-behaved fake would make.

Each POST it receives (any path) takes the next queued script and plays it
step by step on the raw response: a status and headers, bytes written as they
are (malformed JSON, invalid UTF-8, a half line...), pauses, a cut of the
connection, or a hang. It speaks no wire format of its own; the tests write
the bytes of each provider's format (see the `sse`, `event` helpers)::

    fake.play(Status(200, SSE), Send(sse({...})), Cut())

A request with no script queued gets a 500.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

SSE = {"Content-Type": "text/event-stream"}
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Status:
    """The response's status and headers (the first step of a script)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: dict(SSE))


@dataclass(frozen=True)
class Send:
    """Bytes written to the body as they are."""

    data: bytes


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Cut:
    """Drop the connection (what was written is flushed first)."""


@dataclass(frozen=True)
class Hang:
    """Send nothing more, and never end, until the client goes away."""


Step = Status | Send | Pause | Cut | Hang


def sse(payload: Any, name: str | None = None) -> bytes:
    """One server-sent event: `data: <json>` (with an `event:` line if named)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + data + b"\n\n"


def anthropic(payload: dict[str, Any]) -> bytes:
    """An Anthropic stream event (its `type` is also its event name)."""
    return sse(payload, payload["type"])


class ScriptedUpstream(ThreadedServer):
    name = "scripted-upstream"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._scripts: list[list[Step]] = []
        self._requests: list[dict[str, Any]] = []
        self._hanging = 0

    def play(self, *steps: Step) -> None:
        """Queue a script for the next request."""
        with self._lock:
            self._scripts.append(list(steps))

    def answer(self, payload: Any, status: int = 200) -> None:
        """Queue a whole JSON answer (or raw bytes) for the next request."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.play(Status(status, dict(JSON)), Send(body))

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    @property
    def hanging(self) -> int:
        """Responses hanging right now (their clients have not gone away)."""
        with self._lock:
            return self._hanging

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{path:.*}", self._play)

    async def _play(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        with self._lock:
            self._requests.append(
                {"path": request.path, "headers": dict(request.headers), "body": raw}
            )
            script = self._scripts.pop(0) if self._scripts else [Status(500, dict(JSON))]
        first, rest = (
            (script[0], script[1:]) if isinstance(script[0], Status) else (Status(), script)
        )
        assert isinstance(first, Status)
        response = web.StreamResponse(status=first.status, headers=first.headers)
        await response.prepare(request)
        for step in rest:
            if isinstance(step, Send):
                await response.write(step.data)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Cut):
                assert request.transport is not None
                request.transport.close()
                return response
            elif isinstance(step, Hang):
                await self._hang(request)
                return response
        await response.write_eof()
        return response

    async def _hang(self, request: web.Request) -> None:
        with self._lock:
            self._hanging += 1
        try:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self._hanging -= 1
