"""Server-sent events out: the two ways a dialect writes an event."""

from __future__ import annotations

from typing import Any

import orjson


def data_event(payload: Any) -> bytes:
    """An event of one `data:` line (OpenAI's chunks and errors)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def typed_event(kind: str, data: dict[str, Any]) -> bytes:
    """A named event whose payload repeats its name as `type`, first (Anthropic's)."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"
