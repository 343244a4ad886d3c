"""Stream load generator: N concurrent streamed chat requests, each on its own connection.

Every stream posts one fixed ``"stream": true`` chat request (with
``"stream_options": {"include_usage": true}``) and reads the reply to its end. The posts start
together, spread evenly over ``--ramp`` seconds (default 1): 2,000 connects in the same
millisecond would overflow the server's listen queue, and a dropped SYN costs its client a
one-second retransmit, which would measure the kernel rather than the server. Prints one JSON
line::

    {"streams": N, "completed": k, "failed": N - k, "ttfb_p50_ms": ..., "ttfb_p99_ms": ...,
     "total_p50_ms": ..., "total_p99_ms": ..., "wall_s": ..., "first_error": ...}

A stream is completed when its status is 200 and its body holds ``data: [DONE]``. TTFB is the
time from the stream's own post to the first body byte, total the time to the end of the body;
their percentiles are over completed streams. ``wall_s`` runs from the first post to the end of
the last stream. aiohttp client on uvloop, one process.

    python bench/stream_load.py --url http://127.0.0.1:9001/v1/chat/completions \\
        --auth "Bearer sk-bench" --streams 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
import uvloop
from load import percentile, target_args
from nofile import raise_open_file_limit

DONE = b"data: [DONE]"


class Stats:
    def __init__(self) -> None:
        self.ttfb: list[float] = []
        self.total: list[float] = []
        self.failed = 0
        self.first_error: str | None = None
        self.last_end = 0.0

    def error(self, what: str) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = what


async def one_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    start_at: float,
    stats: Stats,
) -> None:
    clock = time.perf_counter
    await asyncio.sleep(max(0.0, start_at - clock()))
    start = clock()
    first: float | None = None
    head = b""  # the start of the body, for the error message of a failed stream
    seen_done = False
    tail = b""  # the end of the previous read: [DONE] may straddle two reads
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            async for data in resp.content.iter_any():
                if first is None:
                    first = clock()
                    head = data[:200]
                if not seen_done:
                    seen_done = DONE in tail + data
                    tail = data[-len(DONE) :]
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        stats.error(f"{type(exc).__name__}: {exc}")
        stats.last_end = max(stats.last_end, clock())
        return
    end = clock()
    stats.last_end = max(stats.last_end, end)
    if status != 200:
        stats.error(f"HTTP {status}: {head.decode(errors='replace')}")
    elif not seen_done:
        stats.error("stream ended without data: [DONE]")
    else:
        assert first is not None
        stats.ttfb.append(first - start)
        stats.total.append(end - start)


async def run(args: argparse.Namespace) -> dict[str, object]:
    body = json.dumps(
        {
            "model": args.model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark"}],
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if args.auth:
        headers["Authorization"] = args.auth
    stats = Stats()
    # No pool limit and no reuse: every stream opens its own connection.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        begin = time.perf_counter() + 0.05
        step = args.ramp / args.streams if args.streams else 0.0
        await asyncio.gather(
            *(
                one_stream(session, args.url, body, headers, begin + i * step, stats)
                for i in range(args.streams)
            )
        )
    ttfb, total = sorted(stats.ttfb), sorted(stats.total)
    return {
        "streams": args.streams,
        "completed": len(ttfb),
        "failed": stats.failed,
        "ttfb_p50_ms": round(percentile(ttfb, 50) * 1000, 2),
        "ttfb_p99_ms": round(percentile(ttfb, 99) * 1000, 2),
        "total_p50_ms": round(percentile(total, 50) * 1000, 2),
        "total_p99_ms": round(percentile(total, 99) * 1000, 2),
        "wall_s": round(max(0.0, stats.last_end - begin), 3),
        "first_error": stats.first_error,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target_args(ap)
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument(
        "--ramp", type=float, default=1.0, help="seconds over which the posts are spread"
    )
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per stream")
    args = ap.parse_args()
    raise_open_file_limit()
    result = uvloop.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
