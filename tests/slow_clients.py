"""Hostile clients for the edge tests, on real sockets: a population of
connections that send their request head a byte at a time and never finish it
(slowloris), and a gateway run as a subprocess with a small open-file limit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.firestore_emulator import free_port

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"


def endless_head() -> Iterator[int]:
    """A request head that never ends: header after header, a byte at a time."""
    yield from HEAD
    for n in itertools.count():
        yield from b"X-Slow-%d: yes\r\n" % n


class SlowClients:
    """`count` connections kept open at once, each sending one byte of a head
    every `interval` seconds; a connection the server closes is counted and,
    after `pause` seconds, opened again. Runs in a process of its own, so that
    it competes with the client under test for the CPU, not for a GIL."""

    def __init__(self, port: int, count: int, interval: float = 0.25, pause: float = 0.2) -> None:
        context = multiprocessing.get_context("spawn")
        self._counters = context.Array("q", 3, lock=False)  # opened, closed, peak open
        self._stop = context.Event()
        self._process = context.Process(
            target=_flood,
            args=(port, count, interval, pause, self._counters, self._stop),
            name="slow-clients",
            daemon=True,
        )

    @property
    def opened(self) -> int:
        return int(self._counters[0])

    @property
    def closed_by_server(self) -> int:
        return int(self._counters[1])

    @property
    def peak_open(self) -> int:
        return int(self._counters[2])

    def start(self) -> SlowClients:
        self._process.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _flood(port: int, count: int, interval: float, pause: float, counters: Any, stop: Any) -> None:
    asyncio.run(_slow_clients(port, count, interval, pause, counters, stop))


async def _slow_clients(
    port: int, count: int, interval: float, pause: float, counters: Any, stop: Any
) -> None:
    open_now = 0

    async def client() -> None:
        nonlocal open_now
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(pause)
                continue
            counters[0] += 1
            open_now += 1
            counters[2] = max(counters[2], open_now)
            try:
                if await trickle(reader, writer, interval):
                    counters[1] += 1
            finally:
                open_now -= 1
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await asyncio.sleep(pause)

    clients = [asyncio.create_task(client()) for _ in range(count)]
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)


async def trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, interval: float
) -> bool:
    """Send the endless head until the server closes the connection (True)."""
    for byte in endless_head():
        try:
            writer.write(bytes((byte,)))
            await writer.drain()
            await asyncio.wait_for(reader.read(4096), interval)
            return True  # an answer (a refusal) or EOF: the server is done with us
        except TimeoutError:
            continue  # still open: next byte
        except OSError:
            return True  # reset by the server
    return False


class GatewayProcess:
    """`gateway serve` in a subprocess on a free port, with RLIMIT_NOFILE set
    to `open_files` before it starts (the gateway may not raise it further:
    soft and hard are both set)."""

    def __init__(self, env: Mapping[str, str], open_files: int) -> None:
        self.env = dict(env)
        self.open_files = open_files
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _limit(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def start(self) -> GatewayProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.ops.cli", "serve", "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=self._limit,  # only setrlimit, between fork and exec
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the gateway did not start")

    def peak_rss_mib(self) -> float:
        """The process's peak resident memory so far (VmHWM), in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
