"""The bounded decoder and line splitter, fed bytes directly (no I/O)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import pytest

from gateway.providers.bounded_decoding import (
    BoundedDecoder,
    BoundedLines,
    DecodingError,
    TooLarge,
    UnsupportedEncoding,
)
from tests.fakes.hostile_upstream import MiB, gzip_bomb

TEXT = b'{"hello": "world"}\n' * 1000


def decode_all(decoder: BoundedDecoder, parts: Iterable[bytes]) -> bytes:
    out = b"".join(piece for part in parts for piece in decoder.feed(part))
    decoder.finish()
    return out


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        (None, TEXT),
        ("identity", TEXT),
        ("gzip", zlib.compress(TEXT, wbits=31)),
        ("x-gzip", zlib.compress(TEXT, wbits=31)),
        ("deflate", zlib.compress(TEXT)),  # zlib-wrapped, as HTTP means it
        ("deflate", zlib.compress(TEXT, wbits=-15)),  # raw, as some servers send it
        ("GZIP", zlib.compress(TEXT, wbits=31) + zlib.compress(b"more", wbits=31)),
    ],
)
@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_every_supported_encoding_decodes_in_any_pieces(
    encoding: str | None, encoded: bytes, piece: int
):
    expected = TEXT + (b"more" if encoding == "GZIP" else b"")
    decoder = BoundedDecoder(encoding, limit=len(expected), max_piece=100)
    assert decode_all(decoder, pieces(encoded, piece)) == expected
    assert decoder.total == len(expected)


def test_a_gzip_bomb_stops_one_byte_past_the_limit():
    """300 MiB of zeros (under a MiB compressed), fed whole: the decoder inflates
    no more than a piece at a time and gives up one byte past the limit."""
    limit = MiB
    decoder = BoundedDecoder("gzip", limit, max_piece=4096)
    bomb = b"".join(gzip_bomb(b"", b"\0", 300 * MiB, b""))
    sizes: list[int] = []
    with pytest.raises(TooLarge, match=f"more than {limit} bytes"):
        sizes.extend(len(piece) for piece in decoder.feed(bomb))
    assert decoder.total == limit + 1
    assert max(sizes) == 4096
    assert sum(sizes) == limit  # the piece that passed the bound was never handed out


def test_the_bomb_generator_is_valid_gzip():
    """The bomb is a real gzip member (so it is the bound that stops it, not an error)."""
    encoded = b"".join(gzip_bomb(b"[", b"ab", 3 * MiB, b"]"))
    assert zlib.decompress(encoded, wbits=31) == b"[" + b"ab" * (3 * MiB // 2) + b"]"
    assert len(encoded) < 20_000
    decoder = BoundedDecoder("gzip", 3 * MiB + 2)
    assert len(decode_all(decoder, pieces(encoded, 999))) == 3 * MiB + 2


def test_an_identity_body_past_the_limit_fails_at_the_limit():
    decoder = BoundedDecoder(None, limit=10)
    assert list(decoder.feed(b"x" * 10)) == [b"x" * 10]
    with pytest.raises(TooLarge):
        list(decoder.feed(b"x"))


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip"])
def test_an_unknown_encoding_is_refused_before_any_byte(encoding: str):
    with pytest.raises(UnsupportedEncoding, match="unsupported Content-Encoding"):
        BoundedDecoder(encoding, limit=MiB)


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", b"not gzip at all"),
        ("gzip", zlib.compress(TEXT, wbits=31)[:-20]),  # truncated
        ("deflate", zlib.compress(TEXT)[:-10]),
        ("deflate", zlib.compress(TEXT) + b"trailing"),
        ("gzip", zlib.compress(TEXT, wbits=31) + b"trailing garbage"),
    ],
)
def test_a_corrupt_or_truncated_body_is_an_error(encoding: str, encoded: bytes):
    with pytest.raises(DecodingError):
        decode_all(BoundedDecoder(encoding, limit=MiB), pieces(encoded, 100))


def test_lines_are_split_whatever_the_pieces():
    data = b"data: 1\n\ndata: 22\r\n\n: ping\ndata: last"
    for size in (1, 3, 1000):
        splitter = BoundedLines(max_line=64)
        lines = [line for part in pieces(data, size) for line in splitter.feed(part)]
        assert lines == [b"data: 1\n", b"\n", b"data: 22\r\n", b"\n", b": ping\n"]
        assert splitter.finish() == b"data: last"


def test_a_line_may_be_exactly_the_limit_and_no_longer():
    splitter = BoundedLines(max_line=8)
    assert splitter.feed(b"1234567\n") == [b"1234567\n"]
    with pytest.raises(TooLarge, match="longer than 8 bytes"):
        splitter.feed(b"12345678\n")


def test_a_line_without_end_fails_as_soon_as_it_passes_the_limit():
    splitter = BoundedLines(max_line=1000)
    for _ in range(10):
        assert splitter.feed(b"x" * 100) == []
    with pytest.raises(TooLarge):
        splitter.feed(b"x")
