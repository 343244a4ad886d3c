"""An answer's head leaves with its body's first bytes, in one write; alone at
the end of the loop's turn when no body follows at once; first when the
connection closes. (The whole suite runs through it on real sockets.)"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.edge.held_head import HeldHead


class Recording:
    """The calls a transport is given, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def held(transport: Recording) -> HeldHead:
    return HeldHead(transport, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_head_and_its_body_leave_in_one_write():
    transport = Recording()
    writer = held(transport)
    writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.calls == []
    writer.write(b"{}")
    writer.write(b"more")
    assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}"), ("write", b"more")]
    await asyncio.sleep(0)  # nothing is left to send at the end of the turn
    assert len(transport.calls) == 2


async def test_a_head_with_no_body_yet_leaves_at_the_end_of_the_turn():
    transport = Recording()
    writer = held(transport)
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)
    assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")]
    writer.write(b"5\r\nhello\r\n")
    assert transport.calls[-1] == ("write", b"5\r\nhello\r\n")


async def test_closing_sends_the_held_head_first():
    transport = Recording()
    writer = held(transport)
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    writer.close()
    assert transport.calls == [("write", b"HTTP/1.1 204 No Content\r\n\r\n"), ("close", None)]
    await asyncio.sleep(0)
    assert len(transport.calls) == 2  # not written twice


async def test_a_large_body_is_not_copied_behind_the_head():
    transport = Recording()
    writer = held(transport)
    body = b"x" * (64 * 1024)
    writer.write(b"head")
    writer.write(body)
    assert transport.calls == [("write", b"head"), ("write", body)]


async def test_a_head_held_when_the_connection_closed_under_it_is_dropped():
    transport = Recording()
    writer = held(transport)
    writer.write(b"head")
    transport.closing = True  # the client went away
    await asyncio.sleep(0)
    assert transport.calls == []
    assert writer.is_closing()
    assert writer.get_extra_info("peername") == "info:peername"
