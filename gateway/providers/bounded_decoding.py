"""Bounded decoding of a provider's answer, without I/O: bytes in as they
arrive, decoded bytes (or lines) out, and an error the moment a bound is passed.

The gateway asks providers for `identity`; one that compresses anyway is
decoded here a piece at a time, never to more than the bound, so a small
compressed body cannot expand into an unbounded one in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator


class DecodingError(Exception):
    """The body cannot be decoded within its bounds; the message says why."""


class TooLarge(DecodingError):
    pass


class UnsupportedEncoding(DecodingError):
    pass


_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def _is_zlib_header(first_two: bytes) -> bool:
    """HTTP's "deflate" is meant to be zlib-wrapped, but some servers send raw deflate."""
    return (
        len(first_two) == 2
        and first_two[0] & 0x0F == 8
        and (first_two[0] << 8 | first_two[1]) % 31 == 0
    )


class BoundedDecoder:
    """Decodes one Content-Encoding (identity, gzip or deflate) to at most
    `limit` bytes in total, handed out in pieces of at most `max_piece` bytes
    (a few compressed bytes can stand for megabytes: they are never inflated
    at once). Raises TooLarge as soon as more than `limit` would come out."""

    def __init__(
        self, content_encoding: str | None, limit: int, max_piece: int = 64 * 1024
    ) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            encoding = "gzip"
        elif encoding not in ("identity", "deflate"):
            raise UnsupportedEncoding(f"an unsupported Content-Encoding {encoding!r}")
        self.encoding = encoding
        self.limit = limit
        self.max_piece = max_piece
        self.total = 0  # decoded bytes so far
        self._inflater: zlib._Decompress | None = (
            zlib.decompressobj(_GZIP) if encoding == "gzip" else None
        )
        self._head = b""  # deflate: the first bytes, until the wrapping is known

    def _count(self, size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise TooLarge(f"more than {self.limit} bytes")

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next bytes of the body."""
        if self.encoding == "identity":
            self._count(len(data))
            if data:
                yield data
            return
        if self._inflater is None:  # deflate, wrapping not known yet
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            wbits = _ZLIB if _is_zlib_header(data[:2]) else _RAW_DEFLATE
            self._inflater = zlib.decompressobj(wbits)
        yield from self._inflate(self._inflater, data)

    def _inflate(self, inflater: zlib._Decompress, pending: bytes) -> Iterator[bytes]:
        while True:
            if inflater.eof:
                pending = inflater.unused_data + pending
                if not pending:
                    return
                if self.encoding != "gzip":
                    raise DecodingError("data after the end of the deflate stream")
                inflater = self._inflater = zlib.decompressobj(_GZIP)  # another gzip member
            # One byte past the room is enough to know the bound is passed.
            want = min(self.limit - self.total + 1, self.max_piece)
            try:
                piece = inflater.decompress(pending, want)
            except zlib.error as exc:
                raise DecodingError(f"a {self.encoding} body that does not decode ({exc})") from exc
            self._count(len(piece))
            if piece:
                yield piece
            # Past a member's end, the rest of the input is in unused_data (read above).
            pending = b"" if inflater.eof else inflater.unconsumed_tail
            # A full piece may leave output pending inside zlib even with no input left.
            if len(piece) < want and not pending and not inflater.eof:
                return

    def finish(self) -> None:
        """The body ended: a compressed one must have ended whole."""
        if self.encoding == "identity":
            return
        if self._inflater is None:
            if self._head:
                raise DecodingError(f"a truncated {self.encoding} body")
            return
        if not self._inflater.eof:
            raise DecodingError(f"a truncated {self.encoding} body")


class BoundedLines:
    """Splits decoded bytes into lines (each with its b"\\n"), none longer than
    `max_line`; `feed` raises TooLarge as soon as a line passes it."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        # Only the new bytes can hold a line end: the pending ones had none.
        start_search = len(self._pending)
        self._pending += data
        lines: list[bytes] = []
        start = 0
        while (end := self._pending.find(b"\n", start_search)) != -1:
            if end + 1 - start > self.max_line:
                raise TooLarge(f"a line longer than {self.max_line} bytes")
            lines.append(bytes(self._pending[start : end + 1]))
            start = start_search = end + 1
        del self._pending[:start]
        if len(self._pending) > self.max_line:
            raise TooLarge(f"a line longer than {self.max_line} bytes")
        return lines

    def finish(self) -> bytes:
        """The last line, when the body does not end with a line end."""
        rest, self._pending = bytes(self._pending), bytearray()
        return rest
