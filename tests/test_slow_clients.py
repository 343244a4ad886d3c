"""Slow clients cannot crowd out a normal one: the gateway (a subprocess whose
open-file limit is 256) under more slow-header connections than it has file
descriptors, and a concurrent 100 MB upload, still answers a normal client."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from billing.tokens import TokenCounter
from tests.harness import GatewayServer
from tests.slow_clients import GatewayProcess, SlowClients

OPEN_FILES = 256
SLOW = 300  # more connections than the process has descriptors
MiB = 1 << 20


def hundred_mib() -> Iterator[bytes]:
    """A 100 MiB body sent chunked: no Content-Length tells the gateway its size."""
    chunk = b"x" * (256 * 1024)
    for _ in range(400):
        yield chunk


@pytest.mark.slow
def test_a_normal_client_is_served_through_a_slowloris_flood_and_a_huge_upload(
    tmp_path: Path, counter: TokenCounter, tiktoken_dir: Path
):
    env = {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_ACCESS_LOG": "0",
        "GATEWAY_SYNC_CRON": "off",
        "GATEWAY_PORT": "0",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
        "GATEWAY_HEADER_TIMEOUT_SECONDS": "2",
        "GATEWAY_BODY_TIMEOUT_SECONDS": "10",
        "GATEWAY_MAX_BODY_BYTES": str(MiB),
    }
    seeded = GatewayServer(tmp_path / "data", counter, env)  # seeds the data dir; not started
    auth = {"Authorization": f"Bearer {seeded.demo_key}"}
    chat = {"model": "mock-1", "messages": [{"role": "user", "content": "still there?"}]}
    with GatewayProcess(env, OPEN_FILES) as gateway:
        url = f"{gateway.base_url}/v1/chat/completions"

        def ask() -> float:
            """One request on a new connection; its latency. Fails unless answered 200."""
            started = time.monotonic()
            response = httpx.post(url, headers=auth, json=chat, timeout=10)
            assert response.status_code == 200, response.text
            return time.monotonic() - started

        ask()  # warm
        rss_before = gateway.peak_rss_mib()
        flood = SlowClients(gateway.port, SLOW).start()
        try:
            deadline = time.monotonic() + 20
            while flood.opened < SLOW + OPEN_FILES and time.monotonic() < deadline:
                time.sleep(0.05)
            assert flood.opened >= SLOW + OPEN_FILES  # evictions made room for more

            during_flood = [ask() for _ in range(20)]

            upload: list[httpx.Response] = []
            uploader = threading.Thread(
                target=lambda: upload.append(
                    httpx.post(url, headers=auth, content=hundred_mib(), timeout=30)
                )
            )
            uploader.start()
            during_upload = []
            while uploader.is_alive():
                during_upload.append(ask())
            uploader.join()
            during_upload.append(ask())
            # The gateway closes slow connections (evicted for a newcomer, or past
            # the header timeout): as many closes as there were slow clients, and
            # more, come within a bounded wait.
            deadline = time.monotonic() + 20
            while flood.closed_by_server < SLOW and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            flood.stop()
        assert flood.closed_by_server >= SLOW
        assert upload[0].status_code == 413
        assert upload[0].json()["error"]["code"] == "request_too_large"
        rss_after = gateway.peak_rss_mib()
    # Figures for the record, not assertions: they depend on the machine.
    print(
        f"\nslow connections opened {flood.opened}, closed by the gateway "
        f"{flood.closed_by_server}, at most {flood.peak_open} open at once; latency "
        f"during the flood median {statistics.median(during_flood) * 1000:.0f} ms, worst "
        f"{max(during_flood) * 1000:.0f} ms ({len(during_flood)} requests); during the "
        f"upload median {statistics.median(during_upload) * 1000:.0f} ms, worst "
        f"{max(during_upload) * 1000:.0f} ms ({len(during_upload)} requests); "
        f"peak RSS {rss_before:.0f} -> {rss_after:.0f} MiB"
    )
