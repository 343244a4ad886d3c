"""Load generator: N concurrent keep-alive connections posting one fixed chat request.

Runs ``--warmup`` seconds unmeasured, then ``--seconds`` measured, and prints one JSON line::

    {"requests": ..., "rps": ..., "p50_ms": ..., "p99_ms": ..., "errors": ...}

``errors`` counts non-200 responses and failed requests. aiohttp client on uvloop, one process.

    python bench/load.py --url http://127.0.0.1:9001/v1/chat/completions --auth "Bearer sk-bench"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time

import aiohttp
import uvloop

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None
        self.recording = False

    def error(self, what: str) -> None:
        if self.recording:
            self.errors += 1
            if self.first_error is None:
                self.first_error = what


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    stats: Stats,
    deadline: list[float],
) -> None:
    clock = time.perf_counter
    while clock() < deadline[0]:
        start = clock()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            stats.error(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)  # do not spin on a dead server
            continue
        if status == 200:
            if stats.recording:
                stats.latencies.append(clock() - start)
        else:
            stats.error(f"HTTP {status}")


async def run(args: argparse.Namespace) -> dict[str, object]:
    body = json.dumps(
        {
            "model": args.model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark"}],
            "max_tokens": 16,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if args.auth:
        headers["Authorization"] = args.auth
    stats = Stats()
    start = time.perf_counter()
    # Workers check a shared deadline; it is pushed out once warm-up ends.
    deadline = [start + args.warmup + args.seconds]
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        tasks = [
            asyncio.create_task(worker(session, args.url, body, headers, stats, deadline))
            for _ in range(args.connections)
        ]
        await asyncio.sleep(args.warmup)
        stats.recording = True
        measured_from = time.perf_counter()
        deadline[0] = measured_from + args.seconds
        await asyncio.sleep(args.seconds)
        stats.recording = False
        elapsed = time.perf_counter() - measured_from
        await asyncio.gather(*tasks)
    lat = sorted(stats.latencies)
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "errors": stats.errors,
        "first_error": stats.first_error,
    }


def target_args(ap: argparse.ArgumentParser) -> None:
    """What every load generator is told: where to post, with which key and model."""
    ap.add_argument("--url", required=True)
    ap.add_argument("--auth", default="", help='Authorization header, e.g. "Bearer sk-..."')
    ap.add_argument("--model", default=DEFAULT_MODEL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target_args(ap)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    args = ap.parse_args()
    result = uvloop.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
