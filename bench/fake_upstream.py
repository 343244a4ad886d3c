"""A zero-latency fake OpenAI upstream for the load benchmark.

Raw asyncio protocol on uvloop with the httptools parser: HTTP/1.1 keep-alive (and pipelining),
``POST /v1/chat/completions`` answers a fixed, small, non-streaming chat completion; every other
path gets a 404. It does no authentication and no work, so it is never the bottleneck.

    python bench/fake_upstream.py --port 9001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import cast

import httptools
import uvloop

BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, benchmark!"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
).encode()


def _response(status: str, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


OK = {ka: _response("200 OK", BODY, ka) for ka in (True, False)}
NOT_FOUND_BODY = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
NOT_FOUND = {ka: _response("404 Not Found", NOT_FOUND_BODY, ka) for ka in (True, False)}
CHAT_PATH = b"/v1/chat/completions"


class HttpProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        keep_alive = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        ok = path == CHAT_PATH and self.parser.get_method() == b"POST"
        self.transport.write((OK if ok else NOT_FOUND)[keep_alive])
        if not keep_alive:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
