"""A hostile OpenAI-compatible upstream: a real local aiohttp server whose answers
are valid but far too large, compressed into bombs, or in encodings nobody asked for.

``mode`` picks the answer to POST /v1/chat/completions (plain or streamed):

- ``"honest-gzip"``: a normal answer, gzip-compressed although the gateway asked for
  identity (which is allowed: it must still work);
- ``"bomb"``: gzip whose content is a valid answer with ``size`` bytes of text, a few
  hundred bytes of compressed data per MiB, generated as it is sent;
- ``"plain"``: the same valid answer uncompressed, sent chunked, ``size`` bytes;
- ``"brotli"``: ``Content-Encoding: br``;
- ``"endless-line"`` (streams): gzip of ``size`` bytes without a line end;
- ``"long-stream"`` (streams): valid chunks of one word each, ``size`` bytes in all.

``sent`` is how many body bytes the last answer got onto the wire before the
gateway went away; ``accept_encoding`` what each request asked for.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

MiB = 1 << 20
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def completion(content: str, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def chunk(delta: dict[str, Any], model: str, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def padded(prefix: bytes, filler: bytes, size: int, suffix: bytes) -> Iterator[bytes]:
    """prefix + `size` bytes of `filler` repeated (in 1 MiB blocks) + suffix, lazily."""
    block = filler * (MiB // len(filler))
    yield prefix
    for _ in range(size // MiB):
        yield block
    yield suffix


def gzip_bomb(prefix: bytes, filler: bytes, size: int, suffix: bytes) -> Iterator[bytes]:
    """A valid gzip member of `padded(...)`, compressed once per distinct block:
    each block ends in a full flush, so the same compressed bytes stand for every
    repetition. The trailer's CRC is computed only if the end is reached."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = filler * (MiB // len(filler))
    compressed_block = b""
    yield GZIP_HEADER
    yield deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)
    for _ in range(size // MiB):
        if not compressed_block:
            compressed_block = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
        yield compressed_block
    yield deflate.compress(suffix) + deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(size // MiB):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    total = len(prefix) + size // MiB * MiB + len(suffix)
    yield struct.pack("<II", crc, total & 0xFFFFFFFF)


def huge_answer(size: int, model: str) -> tuple[bytes, bytes, bytes]:
    """(prefix, filler, suffix) of a valid chat completion whose text is `size` bytes."""
    whole = json.dumps(completion("@@", model)).encode()
    prefix, suffix = whole.split(b"@@")
    return prefix, b"a", suffix


class HostileUpstream(ThreadedServer):
    name = "hostile-upstream"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.mode = "honest-gzip"
            self.size = 300 * MiB
            self.sent = 0
            self.calls = 0
            self.accept_encoding: list[str | None] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self.calls += 1
            self.accept_encoding.append(request.headers.get("Accept-Encoding"))
            self.sent = 0
        model = str(body.get("model"))
        stream = bool(body.get("stream"))
        kind = "text/event-stream" if stream else "application/json"
        if self.mode == "honest-gzip":
            if stream:
                raw = chunk({"role": "assistant", "content": "Hello"}, model)
                raw += chunk({"content": " there"}, model, "stop")
                raw += b"data: " + json.dumps({"choices": [], "usage": USAGE}).encode()
                raw += b"\n\ndata: [DONE]\n\n"
            else:
                raw = json.dumps(completion("Hello there", model)).encode()
            return await self._send(request, kind, "gzip", [zlib.compress(raw, wbits=31)])
        if self.mode == "brotli":
            return await self._send(request, kind, "br", [b"\x0b\x02\x80hello\x03"])
        if self.mode == "long-stream":
            word = chunk({"content": "a "}, model)
            return await self._send(request, kind, None, padded(b"", word, self.size, b""))
        if self.mode == "endless-line":
            return await self._send(request, kind, "gzip", gzip_bomb(b"", b"\0", self.size, b""))
        prefix, filler, suffix = huge_answer(self.size, model)
        if self.mode == "bomb":
            parts = gzip_bomb(prefix, filler, self.size, suffix)
            return await self._send(request, kind, "gzip", parts)
        return await self._send(request, kind, None, padded(prefix, filler, self.size, suffix))

    async def _send(
        self,
        request: web.Request,
        content_type: str,
        encoding: str | None,
        parts: Iterator[bytes] | list[bytes],
    ) -> web.StreamResponse:
        headers = {"Content-Type": content_type}
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            for part in parts:
                await response.write(part)
                with self._lock:
                    self.sent += len(part)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the gateway hung up: what it took is counted in `sent`
        return response
