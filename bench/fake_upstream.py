"""A zero-latency fake OpenAI upstream for the load benchmarks.

Raw asyncio protocol on uvloop with the httptools parser: HTTP/1.1 keep-alive (and pipelining),
``POST /v1/chat/completions`` answers a fixed, small, non-streaming chat completion; every other
path gets a 404. It does no authentication and no work, so it is never the bottleneck.

A chat request whose JSON body has ``"stream": true`` is answered as OpenAI streams: a chunked
``text/event-stream`` whose first chunk (role ``assistant``, empty content) is written at once,
then ``--chunks`` chunks of one content token each, ``--interval`` seconds apart (timers on the
event loop, so thousands of streams cost no thread), then, when the request asked for
``"stream_options": {"include_usage": true}``, a chunk with empty choices and usage
``12 + chunks`` tokens, then ``data: [DONE]`` and the end of the chunked body.

    python bench/fake_upstream.py --port 9001 [--chunks 20] [--interval 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import deque
from typing import Any, cast

import httptools
import uvloop
from nofile import raise_open_file_limit

MODEL = "gpt-4o-mini-2024-07-18"
BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
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


def _sse(data: Any) -> bytes:
    """One server-sent event as one chunk of HTTP/1.1 chunked transfer encoding."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    event = f"data: {text}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(event), event)


class StreamReply:
    """The bytes of a streamed reply, built once: every stream sends the same ones."""

    def __init__(self, chunks: int, interval: float) -> None:
        self.interval = interval

        def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _sse({**common, "choices": [choice]})

        common = {
            "id": "chatcmpl-bench-stream",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
        }
        self.head = {
            ka: (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/event-stream\r\n"
                "Cache-Control: no-cache\r\n"
                "Transfer-Encoding: chunked\r\n"
                f"Connection: {'keep-alive' if ka else 'close'}\r\n\r\n"
            ).encode()
            + chunk({"role": "assistant", "content": ""})
            for ka in (True, False)
        }
        # One token per chunk; the last one carries the finish reason, as OpenAI's stop chunk.
        self.tokens = [chunk({"content": f" tok{i}"}) for i in range(chunks)]
        if self.tokens:
            self.tokens[-1] += chunk({}, "stop")
        usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
        self.usage = _sse({**common, "choices": [], "usage": usage})
        self.done = _sse("[DONE]") + b"0\r\n\r\n"  # the zero-length chunk ends the body


class Pending:
    """A request answered once the stream before it on the same connection has ended."""

    __slots__ = ("include_usage", "keep_alive", "kind")

    def __init__(self, kind: str, keep_alive: bool, include_usage: bool) -> None:
        self.kind = kind  # "ok", "stream" or "not_found"
        self.keep_alive = keep_alive
        self.include_usage = include_usage


def _stream_request(body: bytes) -> tuple[bool, bool]:
    """(stream, include_usage) for a chat request body; non-streaming unless it says so."""
    if b'"stream"' not in body:
        return False, False
    try:
        doc = json.loads(body)
    except ValueError:
        return False, False
    if not isinstance(doc, dict) or doc.get("stream") is not True:
        return False, False
    options = doc.get("stream_options")
    return True, isinstance(options, dict) and options.get("include_usage") is True


class HttpProtocol(asyncio.Protocol):
    def __init__(self, reply: StreamReply) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body = bytearray()
        self.reply = reply
        # The stream in progress: its next token, timer, and what ends it.
        self.timer: asyncio.TimerHandle | None = None
        self.streaming: Pending | None = None
        self.next_token = 0
        self.started = 0.0
        self.queue: deque[Pending] = deque()  # pipelined requests behind the stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.streaming = None
        self.queue.clear()

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
        self.body.clear()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        keep_alive = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        ok = path == CHAT_PATH and self.parser.get_method() == b"POST"
        stream, include_usage = _stream_request(bytes(self.body)) if ok else (False, False)
        self.body.clear()
        kind = "stream" if stream else "ok" if ok else "not_found"
        pending = Pending(kind, keep_alive, include_usage)
        if self.streaming is not None or self.queue:
            self.queue.append(pending)  # answered in order once the stream has ended
        else:
            self.answer(pending)

    def answer(self, request: Pending) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if request.kind == "stream":
            transport.write(self.reply.head[request.keep_alive])
            self.streaming = request
            self.next_token = 0
            loop = asyncio.get_running_loop()
            self.started = loop.time()
            transport.pause_reading()  # no more requests until the stream has ended
            self.timer = loop.call_at(self.started + self.reply.interval, self.tick)
            return
        transport.write((OK if request.kind == "ok" else NOT_FOUND)[request.keep_alive])
        if not request.keep_alive:
            transport.close()

    def tick(self) -> None:
        """Write the next token; after the last, the usage, [DONE] and the end of the body."""
        self.timer = None
        transport, request = self.transport, self.streaming
        if transport is None or request is None or transport.is_closing():
            return
        reply = self.reply
        if self.next_token < len(reply.tokens):
            transport.write(reply.tokens[self.next_token])
            self.next_token += 1
            if self.next_token < len(reply.tokens):
                # Scheduled from the stream's start, so the spacing does not drift.
                when = self.started + (self.next_token + 1) * reply.interval
                self.timer = asyncio.get_running_loop().call_at(when, self.tick)
                return
        transport.write((reply.usage if request.include_usage else b"") + reply.done)
        self.streaming = None
        if not request.keep_alive:
            transport.close()
            return
        while self.queue and self.streaming is None:
            self.answer(self.queue.popleft())
        if self.streaming is None:
            transport.resume_reading()


async def serve(host: str, port: int, reply: StreamReply, backlog: int = 1024) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(reply), host, port, backlog=backlog)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--chunks", type=int, default=20, help="content chunks per streamed reply")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between streamed chunks")
    ap.add_argument("--backlog", type=int, default=1024, help="listen queue length")
    args = ap.parse_args()
    raise_open_file_limit()
    reply = StreamReply(max(0, args.chunks), max(0.0, args.interval))
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port, reply, args.backlog))


if __name__ == "__main__":
    main()
