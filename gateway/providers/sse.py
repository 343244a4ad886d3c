"""Server-sent events in, without I/O: lines in, event data out. Writing events
out is the dialects' part (`gateway.dialects.sse`)."""

from __future__ import annotations

from collections.abc import Iterator


class SSEDecoder:
    """Feed it lines (with or without their line ending); it yields each
    event's `data` once the blank line that ends the event arrives."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, raw: bytes) -> Iterator[str]:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if self._data:
                data, self._data = "\n".join(self._data), []
                yield data
            return
        if line.startswith(":"):
            return  # a comment, e.g. a keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def flush(self) -> Iterator[str]:
        """What is pending when the stream ends without its last blank line."""
        if self._data:
            data, self._data = "\n".join(self._data), []
            yield data
