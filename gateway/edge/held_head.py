"""An answer's head and its first body bytes in one write.

uvicorn writes a response's head and its body in two `transport.write` calls,
so a whole JSON answer costs two sends, and its client two wake-ups and two
reads. Each request's cycle writes through a `HeldHead` instead: its first
write (the head, or a `100 Continue`) waits for the next one, which carries it
along, or for the end of the event loop's current turn, when it leaves alone
(a stream whose first chunk is still on its way). Nothing is held longer than
that turn, and closing the transport sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

# A body this large is written on its own rather than copied behind the head.
_JOIN_BELOW = 64 * 1024


class HeldHead:
    __slots__ = ("_first", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._first = True  # the next write is the one held
        self._held = b""

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            if data:
                self._held = data
                self._loop.call_soon(self.flush)
            return
        held = self._held
        if held:
            self._held = b""
            if len(data) < _JOIN_BELOW:
                data = held + data
            else:
                self._transport.write(held)
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held:
            self._held = b""
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)
