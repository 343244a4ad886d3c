"""Hostile clients for the edge tests, on real sockets: a population of
connections that send their request head a byte at a time and never finish it
(slowloris), and a gateway run as a subprocess with a small open-file limit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

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
    after `pause` seconds, opened again. Runs in its own thread and loop."""

    def __init__(self, port: int, count: int, interval: float = 0.25, pause: float = 0.2) -> None:
        self.port = port
        self.count = count
        self.interval = interval
        self.pause = pause
        self.opened = 0
        self.closed_by_server = 0
        self.open_now = 0
        self.peak_open = 0
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> SlowClients:
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        clients = [asyncio.create_task(self._client()) for _ in range(self.count)]
        await self._stop.wait()
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    async def _client(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(self.pause)
                continue
            self.opened += 1
            self.open_now += 1
            self.peak_open = max(self.peak_open, self.open_now)
            try:
                if await self._trickle(reader, writer):
                    self.closed_by_server += 1
            finally:
                self.open_now -= 1
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await asyncio.sleep(self.pause)

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Send the endless head until the server closes the connection (True)."""
        for byte in endless_head():
            try:
                writer.write(bytes((byte,)))
                await writer.drain()
                await asyncio.wait_for(reader.read(4096), self.interval)
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
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
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
