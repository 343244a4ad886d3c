"""Benchmark orchestrator: upstream direct vs. bare passthrough vs. the gateway.

Starts the zero-latency fake upstream, then for each target starts its server as a subprocess,
waits for its port, drives it with ``bench/load.py`` (another subprocess, so the load generator
never shares an event loop or a process with a server), stops it, and prints one table::

    python bench/run.py [--connections 50] [--seconds 10] [--warmup 2] [--only direct,passthrough]

A target that fails to start (the gateway, before it exists) is reported and the others still
run. The exit status is 1 when a requested target failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv running this script (not resolved: keep the venv)
MODEL = "gpt-4o-mini-2024-07-18"
UPSTREAM_KEY = "sk-bench"
TARGETS = ("direct", "passthrough", "gateway")
Result = dict[str, Any]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class TargetError(Exception):
    pass


class Procs:
    """Every subprocess started, so that all of them are stopped on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def start(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.logdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH.parent
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def tail(self, proc: subprocess.Popen[bytes], lines: int = 15) -> str:
        text = self.logs[proc.pid].read_text(errors="replace").strip().splitlines()
        return "\n".join("    " + line for line in text[-lines:])

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], procs: Procs, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetError(f"exited with status {proc.returncode}:\n{procs.tail(proc)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TargetError(f"port {port} not open after {timeout:.0f}s:\n{procs.tail(proc)}")


def load(args: argparse.Namespace, url: str, auth: str) -> Result:
    cmd = [sys.executable, str(BENCH / "load.py"), "--url", url, "--auth", auth]
    cmd += ["--model", MODEL, "--connections", str(args.connections)]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    timeout = args.seconds + args.warmup + 60
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise TargetError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_server(
    args: argparse.Namespace,
    procs: Procs,
    name: str,
    cmd: list[str],
    env: dict[str, str],
    port: int,
    auth: str,
    startup_timeout: float = 20.0,
) -> Result:
    proc = procs.start(name, cmd, env)
    try:
        wait_port(port, proc, procs, startup_timeout)
        time.sleep(args.settle)  # what a server does once at start-up is not measured
        return load(args, f"http://127.0.0.1:{port}/v1/chat/completions", auth)
    finally:
        procs.stop(proc)


def bench_direct(args: argparse.Namespace, procs: Procs, upstream: int, tmp: Path) -> Result:
    return load(args, f"http://127.0.0.1:{upstream}/v1/chat/completions", f"Bearer {UPSTREAM_KEY}")


def bench_passthrough(args: argparse.Namespace, procs: Procs, upstream: int, tmp: Path) -> Result:
    port = free_port()
    env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{upstream}/v1"}
    env["BENCH_UPSTREAM_KEY"] = UPSTREAM_KEY
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "passthrough:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    return run_server(args, procs, "passthrough", cmd, env, port, f"Bearer {UPSTREAM_KEY}")


def seed_gateway(
    upstream: int, tmp: Path, extra_env: dict[str, str] | None = None
) -> tuple[Path, dict[str, str], str]:
    """`gateway seed` in a fresh data dir under `tmp`: (gateway command, its env, demo key)."""
    gateway = BIN / "gateway"
    if not gateway.exists():
        raise TargetError(f"{gateway} not found (is the project installed in this venv?)")
    data_dir = Path(tempfile.mkdtemp(prefix="gateway-data-", dir=tmp))
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(data_dir),
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "GATEWAY_ACCESS_LOG": "0",
        **(extra_env or {}),
    }
    seed = subprocess.run(
        [str(gateway), "seed"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if seed.returncode != 0:
        out = (seed.stdout + seed.stderr).strip()[-2000:]
        raise TargetError(f"`gateway seed` failed ({seed.returncode}):\n{out}")
    key_file = data_dir / "demo_api_key"
    if not key_file.exists():
        raise TargetError(f"`gateway seed` wrote no {key_file}")
    return gateway, env, key_file.read_text().strip()


def bench_gateway(args: argparse.Namespace, procs: Procs, upstream: int, tmp: Path) -> Result:
    gateway, env, key = seed_gateway(upstream, tmp)
    port = free_port()
    cmd = [str(gateway), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return run_server(args, procs, "gateway", cmd, env, port, f"Bearer {key}", 60.0)


BENCHES: dict[str, Callable[[argparse.Namespace, Procs, int, Path], Result]] = {
    "direct": bench_direct,
    "passthrough": bench_passthrough,
    "gateway": bench_gateway,
}


def interleaved(
    targets: list[str],
    rounds: int,
    measure: Callable[[str], Result],
    *,
    describe: Callable[[str], str],
    done: Callable[[str, Result], str],
    median_of: str,
) -> tuple[dict[str, list[Result]], dict[str, Result | str]]:
    """Every target measured `rounds` times, interleaved: a machine whose speed drifts
    (shared cores) drifts for every target alike. Returns each target's runs, and its
    median run by `median_of` (or why it failed)."""
    runs: dict[str, list[Result]] = {}
    results: dict[str, Result | str] = {}
    for round_no in range(1, rounds + 1):
        for name in targets:
            if isinstance(results.get(name), str):
                continue
            log(f"round {round_no}/{rounds} {describe(name)}")
            try:
                row = measure(name)
            except (TargetError, OSError, subprocess.SubprocessError, ValueError) as exc:
                log(f"{name} FAILED: {exc}")
                results[name] = str(exc) or type(exc).__name__
                continue
            if row.get("first_error"):
                log(f"{name}: first error: {row['first_error']}")
            runs.setdefault(name, []).append(row)
            log(done(name, row))
    for name, rows in runs.items():
        if not isinstance(results.get(name), str):
            results[name] = sorted(rows, key=lambda r: r[median_of])[len(rows) // 2]
    return runs, results


def print_table(results: dict[str, Result | str]) -> None:
    print()
    print(f"{'target':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, row in results.items():
        if isinstance(row, str):
            lines = [line.strip() for line in row.splitlines() if line.strip()]
            summary = " | ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else "?"
            print(f"{name:<12} failed: {summary[:200]}")
        else:
            print(
                f"{name:<12} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
                f" {row['errors']:>7}"
            )
    print_ratio(results, "rps", "gateway / passthrough")


def print_ratio(results: dict[str, Result | str], key: str, label: str) -> None:
    """`label = x.xx`: the gateway's `key` over the passthrough's (n/a when either failed)."""
    gw, pt = results.get("gateway"), results.get("passthrough")
    if isinstance(gw, dict) and isinstance(pt, dict) and pt[key]:
        print(f"{label} = {gw[key] / pt[key]:.2f}")
    else:
        print(f"{label} = n/a")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument(
        "--settle", type=float, default=2.0, help="seconds a server rests once its port is open"
    )
    ap.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every target this many times, interleaved; report the median run",
    )
    args = ap.parse_args()
    targets = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in targets if t not in BENCHES]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")

    # SIGTERM unwinds like Ctrl-C does, so the `finally` below stops every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmpname:
        tmp = Path(tmpname)
        procs = Procs(tmp)
        try:
            port = free_port()
            upstream = procs.start(
                "upstream", [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(port)]
            )
            try:
                wait_port(port, upstream, procs, 20.0)
            except TargetError as exc:
                log(f"fake upstream failed to start: {exc}")
                return 1
            runs, results = interleaved(
                targets,
                args.rounds,
                lambda name: BENCHES[name](args, procs, port, tmp),
                describe=lambda name: (
                    f"{name}: {args.connections} connections, {args.warmup:g}s + {args.seconds:g}s"
                ),
                done=lambda name, row: f"{name}: {row['rps']:.1f} req/s",
                median_of="rps",
            )
        finally:
            procs.stop_all()
    print_table(results)
    pairs = zip(runs.get("gateway", []), runs.get("passthrough", []), strict=False)
    ratios = [f"{g['rps'] / p['rps']:.2f}" for g, p in pairs if p["rps"]]
    if len(ratios) > 1:
        print(f"per-round gateway / passthrough: {', '.join(ratios)}")
    return 1 if any(isinstance(r, str) for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
