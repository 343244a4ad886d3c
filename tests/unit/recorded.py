"""Recorded provider payloads, and an in-memory Transport that answers with them.

`RecordedUpstream` stands where `gateway.providers.upstream.Upstream` stands in
the gateway: it answers each call with the next scripted `Answer` and keeps what
was sent. A streamed answer is cut into chunks of `chunk_size` bytes and split
into lines by the same `BoundedLines` the real client uses, so that the
adapters see what they would see from a socket that delivers the bytes that way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.providers.base import ChatStream, Chunk, StreamDecoder
from gateway.providers.bounded_decoding import BoundedLines
from gateway.providers.sse import SSEDecoder
from gateway.providers.transport import UpstreamResponse

PAYLOADS = Path(__file__).parent / "payloads"

# Every way a socket might cut the bytes: one at a time, odd sizes that split
# lines and multi-byte characters, and all at once.
CHUNK_SIZES = (1, 2, 3, 7, 64, 1000, 1 << 20)


def payload(name: str) -> bytes:
    """A recorded payload, e.g. "openai/chat_stream.sse", exactly as stored."""
    return (PAYLOADS / name).read_bytes()


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def lines_of(data: bytes, size: int) -> Iterator[bytes]:
    """The lines the real client would yield for `data` arriving `size` bytes at a time."""
    splitter = BoundedLines(1 << 20)
    for piece in pieces(data, size):
        yield from splitter.feed(piece)
    last = splitter.finish()
    if last:
        yield last


def events_of(data: bytes, size: int) -> list[str]:
    """Each server-sent event's data in `data`, as the stream driver reads them
    (the pending event at the end included, as `relay` does)."""
    decoder = SSEDecoder()
    out = [event for line in lines_of(data, size) for event in decoder.feed(line)]
    return out + list(decoder.flush())


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: a body with a status, or an exception to raise
    (a GatewayError, as the real client raises for a failed connection)."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    raises: Exception | None = None

    @classmethod
    def of(cls, name: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
        return cls(payload(name), status, headers or {})


@dataclass(frozen=True, slots=True)
class Sent:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RecordedStream:
    """An open 2xx streamed answer whose bytes are already known."""

    def __init__(self, body: bytes, chunk_size: int) -> None:
        self._body = body
        self._chunk_size = chunk_size
        self.closed = False

    async def lines(self) -> AsyncIterator[bytes]:
        for line in lines_of(self._body, self._chunk_size):
            if self.closed:
                return
            yield line

    def close(self) -> None:
        self.closed = True


class RecordedUpstream:
    """A Transport that answers from a script, in order, and records each call."""

    def __init__(self, *answers: Answer, chunk_size: int = 1 << 20) -> None:
        self._answers = list(answers)
        self.chunk_size = chunk_size
        self.sent: list[Sent] = []
        self.streams: list[RecordedStream] = []

    def _next(self, sent: Sent) -> Answer:
        self.sent.append(sent)
        if not self._answers:
            raise AssertionError(f"no answer scripted for {sent.method} {sent.url}")
        answer = self._answers.pop(0)
        if answer.raises is not None:
            raise answer.raises
        return answer

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> UpstreamResponse:
        answer = self._next(Sent("POST", url, headers, body))
        return UpstreamResponse(answer.status, answer.headers, answer.body)

    async def get(self, url: str, headers: Mapping[str, str], *, provider: str) -> UpstreamResponse:
        answer = self._next(Sent("GET", url, headers, b""))
        return UpstreamResponse(answer.status, answer.headers, answer.body)

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, *, provider: str
    ) -> RecordedStream | UpstreamResponse:
        answer = self._next(Sent("POST", url, headers, body))
        if not 200 <= answer.status < 300:
            return UpstreamResponse(answer.status, answer.headers, answer.body)
        stream = RecordedStream(answer.body, self.chunk_size)
        self.streams.append(stream)
        return stream


def decode_stream(
    name: str, make: Callable[[ChatStream], StreamDecoder], size: int
) -> tuple[list[Chunk], ChatStream]:
    """A recorded stream through a provider's decoder, as `relay` drives it;
    what the decoder raises is raised."""
    stream = ChatStream()
    decoder = make(stream)
    chunks: list[Chunk] = []
    for data in events_of(payload(name), size):
        chunks += decoder.feed(data)
        if decoder.done:
            return chunks, stream
    return chunks + decoder.end(), stream
