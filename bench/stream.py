"""Streaming benchmark: N concurrent metered streams through the gateway vs. a bare passthrough.

Starts the fake upstream in streaming configuration (``--chunks`` chunks ``--interval`` seconds
apart), then for each target starts its server as a subprocess, waits for its port, records the
server's idle RSS, drives it with ``bench/stream_load.py`` (its own process), reads the server's
peak RSS during the load and its RSS after, stops it, and prints one table::

    python bench/stream.py [--streams 2000] [--chunks 20] [--interval 0.25]
                           [--only passthrough,gateway] [--rounds 1] [--ramp 1]

The exit status is 1 when a requested target failed to start (or its load generator failed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nofile import raise_open_file_limit
from run import (
    BENCH,
    MODEL,
    UPSTREAM_KEY,
    Procs,
    TargetError,
    free_port,
    interleaved,
    log,
    print_ratio,
    seed_gateway,
    wait_port,
)

TARGETS = ("passthrough", "gateway")
PEAK_RSS_TARGET_MB = 160
Result = dict[str, Any]
Started = tuple[subprocess.Popen[bytes], int, str]  # (server, port, Authorization header)


def proc_status(pid: int, field: str) -> float | None:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MB, None when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int | None:
    """The host's count of connections dropped for a full accept queue (TcpExt)."""
    try:
        with open("/proc/net/netstat") as netstat:
            lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1], strict=True))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: "5" to clear_refs), so that the
    peak read after the load is the load's, not start-up's (which parses the catalogue and
    the tokenizer and then gives the memory back)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def start_passthrough(args: argparse.Namespace, procs: Procs, upstream: int, tmp: Path) -> Started:
    port = free_port()
    env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{upstream}/v1"}
    env["BENCH_UPSTREAM_KEY"] = UPSTREAM_KEY
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "stream_passthrough:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    cmd += ["--backlog", "2048"]  # uvicorn's default, said out loud: the load ramps into it
    return procs.start("passthrough", cmd, env), port, f"Bearer {UPSTREAM_KEY}"


def start_gateway(args: argparse.Namespace, procs: Procs, upstream: int, tmp: Path) -> Started:
    extra = {
        "GATEWAY_SYNC_CRON": "off",  # no model discovery against the fake upstream
        # Twice the streams: the gateway's listen backlog is at most half its connection
        # cap, and so it is uvicorn's 2,048, the passthrough's, as the streams need.
        "GATEWAY_MAX_CONNECTIONS": str(args.max_connections or 2 * args.streams + 500),
    }
    gateway, env, key = seed_gateway(upstream, tmp, extra)
    port = free_port()
    cmd = [str(gateway), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return procs.start("gateway", cmd, env), port, f"Bearer {key}"


STARTERS: dict[str, Callable[[argparse.Namespace, Procs, int, Path], Started]] = {
    "passthrough": start_passthrough,
    "gateway": start_gateway,
}


def stream_load(args: argparse.Namespace, url: str, auth: str) -> Result:
    cmd = [sys.executable, str(BENCH / "stream_load.py"), "--url", url, "--auth", auth]
    cmd += ["--model", MODEL, "--streams", str(args.streams), "--ramp", str(args.ramp)]
    stream_seconds = args.chunks * args.interval
    cmd += ["--timeout", str(stream_seconds + 60)]
    timeout = stream_seconds + args.ramp + 120
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise TargetError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(args: argparse.Namespace, procs: Procs, name: str, upstream: int, tmp: Path) -> Result:
    proc, port, auth = STARTERS[name](args, procs, upstream, tmp)
    try:
        wait_port(port, proc, procs, 60.0 if name == "gateway" else 20.0)
        time.sleep(args.settle)  # let start-up finish before idle memory is read
        idle = proc_status(proc.pid, "VmRSS")
        if not reset_peak_rss(proc.pid):
            log(f"{name}: cannot reset VmHWM; its peak RSS includes start-up")
        cpu, overflows = cpu_seconds(proc.pid), listen_overflows()
        row = stream_load(args, f"http://127.0.0.1:{port}/v1/chat/completions", auth)
        cpu_after, overflows_after = cpu_seconds(proc.pid), listen_overflows()
        row["cpu_s"] = None if cpu is None or cpu_after is None else cpu_after - cpu
        if overflows is not None and overflows_after is not None:
            row["listen_overflows"] = overflows_after - overflows
        row["idle_rss_mb"] = idle
        row["peak_rss_mb"] = proc_status(proc.pid, "VmHWM")
        row["after_rss_mb"] = proc_status(proc.pid, "VmRSS")
        if proc.poll() is not None:
            row["first_error"] = row.get("first_error") or f"exited ({proc.returncode})"
        if row["failed"]:
            log(f"{name}: {row['failed']} stream(s) failed; its log ends:\n{procs.tail(proc)}")
        return row
    finally:
        procs.stop(proc)


def mb(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def print_table(results: dict[str, Result | str]) -> None:
    print()
    print(
        f"{'target':<12} {'completed':>11} {'TTFB p50 ms':>12} {'TTFB p99 ms':>12}"
        f" {'wall s':>7} {'idle RSS MB':>12} {'peak RSS MB':>12} {'after RSS MB':>13}"
        f" {'CPU s':>6}"
    )
    for name, row in results.items():
        if isinstance(row, str):
            lines = [line.strip() for line in row.splitlines() if line.strip()]
            summary = " | ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else "?"
            print(f"{name:<12} failed: {summary[:200]}")
            continue
        done = f"{row['completed']}/{row['streams']}"
        cpu = "?" if row["cpu_s"] is None else f"{row['cpu_s']:.1f}"
        print(
            f"{name:<12} {done:>11} {row['ttfb_p50_ms']:>12.1f} {row['ttfb_p99_ms']:>12.1f}"
            f" {row['wall_s']:>7.2f} {mb(row['idle_rss_mb']):>12} {mb(row['peak_rss_mb']):>12}"
            f" {mb(row['after_rss_mb']):>13} {cpu:>6}"
        )
    print_ratio(results, "ttfb_p99_ms", "gateway / passthrough TTFB p99")
    gw = results.get("gateway")
    if isinstance(gw, dict):
        print(f"gateway peak RSS = {mb(gw['peak_rss_mb'])} MB (target <= {PEAK_RSS_TARGET_MB})")
    else:
        print(f"gateway peak RSS = n/a (target <= {PEAK_RSS_TARGET_MB})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=2000, help="concurrent streams")
    ap.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between chunks")
    ap.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times, interleaved; report the median run",
    )
    ap.add_argument(
        "--ramp", type=float, default=1.0, help="seconds over which the streams' posts start"
    )
    ap.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="the gateway's GATEWAY_MAX_CONNECTIONS (default: 2 x streams + 500)",
    )
    ap.add_argument(
        "--settle", type=float, default=1.0, help="seconds between a port opening and the load"
    )
    args = ap.parse_args()
    targets = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in targets if t not in STARTERS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")

    # Every subprocess (upstream, servers, load generator) inherits the raised limit.
    open_files = raise_open_file_limit()
    if open_files < 2 * args.streams + 200:
        log(f"open-file limit {open_files} is low for {args.streams} streams")
    # SIGTERM unwinds like Ctrl-C does, so the `finally` below stops every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="gateway-bench-stream-") as tmpname:
        tmp = Path(tmpname)
        procs = Procs(tmp)
        try:
            port = free_port()
            cmd = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(port)]
            cmd += ["--chunks", str(args.chunks), "--interval", str(args.interval)]
            # The proxy under test opens one upstream connection per stream, all within the ramp.
            cmd += ["--backlog", "4096"]
            upstream = procs.start("upstream", cmd)
            try:
                wait_port(port, upstream, procs, 20.0)
            except TargetError as exc:
                log(f"fake upstream failed to start: {exc}")
                return 1
            _, results = interleaved(
                targets,
                args.rounds,
                lambda name: measure(args, procs, name, port, tmp),
                describe=lambda name: (
                    f"{name}: {args.streams} streams of {args.chunks} chunks every "
                    f"{args.interval:g}s"
                ),
                done=lambda name, row: (
                    f"{name}: {row['completed']}/{row['streams']} completed,"
                    f" TTFB p99 {row['ttfb_p99_ms']:.1f} ms,"
                    f" peak RSS {mb(row['peak_rss_mb'])} MB, server CPU"
                    f" {row['cpu_s'] or 0:.1f} s, listen overflows on the host"
                    f" {row.get('listen_overflows', '?')}"
                ),
                median_of="ttfb_p99_ms",
            )
        finally:
            procs.stop_all()
    print_table(results)
    return 1 if any(isinstance(r, str) for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
