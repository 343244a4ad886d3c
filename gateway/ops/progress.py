"""Progress of a long command: a bar redrawn in place on a terminal, plain
lines otherwise (logs, pipes, CI)."""

from __future__ import annotations

from typing import TextIO

_WIDTH = 30


class Progress:
    def __init__(self, label: str, stream: TextIO) -> None:
        self._label = label
        self._stream = stream
        self._tty = stream.isatty()

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if self._tty:
            filled = _WIDTH * done // max(total, 1)
            bar = "#" * filled + "." * (_WIDTH - filled)
            end = "\n" if done >= total else ""
            self._stream.write(f"\r{self._label} [{bar}] {done}/{total} {note:<40}{end}")
        else:
            self._stream.write(f"{self._label}: {done}/{total} {note}".rstrip() + "\n")
        self._stream.flush()
