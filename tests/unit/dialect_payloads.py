"""The recorded payloads of the dialect tests (`payloads/dialects/`), and how a
recorded stream is played through a framing: its chunks one at a time, then its
end (usage and cost: the recorded cost, at PRICES) or the failure that cut it off."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson

from billing.pricing import Prices, Usage
from billing.settlement import PROVIDER, Charge
from gateway.errors import GatewayError, upstream_error
from gateway.providers.sse import SSEDecoder

PAYLOADS = Path(__file__).parent / "payloads" / "dialects"

REQUEST_ID = "req_1"
MODEL = "gpt-4o-mini-2024-07-18"
PRICES = Prices(
    input=Decimal("0.15"),
    output=Decimal("0.60"),
    cache_read=Decimal("0.075"),
    cache_write=Decimal("0.15"),
    markup_percent=Decimal("10"),
    point="gpt-4o-mini-2024-07-18@2024-07-18T00:00:00Z",
)


class Framing(Protocol):
    def chunk(self, chunk: dict[str, Any]) -> bytes: ...
    def end(self, charge: Charge, prices: Prices) -> bytes: ...
    def failed(self, error: GatewayError) -> bytes: ...


def load(name: str) -> Any:
    return orjson.loads((PAYLOADS / name).read_bytes())


def expected(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def play(framing: Framing, stream: str) -> list[bytes]:
    """What the framing returns for each step of a recorded stream, in order."""
    case = load(f"{stream}.json")
    sent = [framing.chunk(chunk) for chunk in case["chunks"]]
    if "failed" in case:
        return [*sent, framing.failed(upstream_error(case["failed"]))]
    end = case["end"]
    charge = Charge(Usage(**end["usage"]), end["cost_nano"], 0, PROVIDER)
    return [*sent, framing.end(charge, PRICES)]


def events(raw: bytes) -> list[tuple[str, Any]]:
    """Each event's name (`message` when it has none) and data, read back as a
    client would: a name line must match the data's `type` when both are there."""
    decoder, name, out = SSEDecoder(), "message", []
    for line in raw.splitlines(keepends=True):
        if line.startswith(b"event: "):
            name = line.removeprefix(b"event: ").decode().strip()
        for data in decoder.feed(line):
            out.append((name, data if data == "[DONE]" else orjson.loads(data)))
            name = "message"
    return out
