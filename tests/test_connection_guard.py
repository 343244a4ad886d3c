"""The connection cap: its arithmetic and eviction order (pure), and on real
sockets a gateway with GATEWAY_MAX_CONNECTIONS=3 that evicts its oldest idle
connection for a newcomer and refuses one cleanly when all are busy."""

from __future__ import annotations

import json
import resource
import select
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.edge.connections import ConnectionGuard
from gateway.edge.server import OWN_FILES, connection_budget, raise_open_file_limit
from tests.harness import GatewayServer
from tests.raw_http import WAIT, bearer, closed_by_server, connect, head, read_answer


class Conn:
    def __init__(self, name: str, evictions: list[str] | None = None) -> None:
        self.name = name
        self.evicted = False
        self._evictions = evictions if evictions is not None else []

    def evict(self) -> None:
        self.evicted = True
        self._evictions.append(self.name)


def test_the_guard_evicts_the_longest_waiting_first_and_never_a_busy_one():
    guard = ConnectionGuard(cap=3)
    evictions: list[str] = []
    a, b, c, d, e = (Conn(n, evictions) for n in "abcde")
    for conn in (a, b, c):
        assert guard.admit(conn)
        guard.waiting(conn)
    guard.busy(a)  # a request in progress
    guard.waiting(b)  # b answered a request: it waits again, now the youngest
    assert guard.admit(d)
    assert evictions == ["c"]
    guard.waiting(d)
    assert guard.admit(e)
    assert evictions == ["c", "b"]
    assert guard.count == 3
    assert guard.evicted == 2


def test_the_guard_refuses_when_every_connection_is_busy_and_recovers():
    guard = ConnectionGuard(cap=2)
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    assert guard.admit(a) and guard.admit(b)
    assert not guard.admit(c)
    assert guard.refused == 1
    assert not (a.evicted or b.evicted)
    guard.closed(a)
    assert guard.admit(c)
    guard.closed(c)
    guard.closed(c)  # twice is harmless
    assert guard.count == 1


@pytest.mark.parametrize("open_files", [256, 1024, 4096, 65536, 1 << 20])
def test_the_budget_fits_the_open_file_limit(open_files: int):
    cap, backlog = connection_budget(open_files)
    # Own files, a full accept burst, and one upstream socket per client connection.
    assert OWN_FILES + backlog + 2 * cap <= open_files
    assert 16 <= backlog <= cap // 2
    assert cap <= 10_000


def test_a_configured_cap_is_kept_within_what_the_limit_allows():
    assert connection_budget(65536, configured=500) == (500, 250)
    assert connection_budget(256, configured=5000) == connection_budget(256)


def test_the_soft_open_file_limit_is_raised_to_the_hard_one():
    soft = raise_open_file_limit()
    now, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == now
    assert hard == resource.RLIM_INFINITY or now == hard


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.02)


def still_open(sock: socket.socket) -> bool:
    """Nothing to read (not even EOF) for a short while: the server kept it."""
    return not select.select([sock], [], [], 0.3)[0]


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayServer]) -> GatewayServer:
    return make_gateway(env={"GATEWAY_MAX_CONNECTIONS": "3"})


def test_a_newcomer_evicts_the_oldest_idle_connection(gw: GatewayServer):
    idle = [connect(gw) for _ in range(3)]
    try:
        guard = gw.connection_guard()
        wait_until(lambda: guard.count == 3)
        assert httpx.get(f"{gw.base_url}/health").status_code == 200
        assert closed_by_server(idle[0]) == b""
        assert still_open(idle[1]) and still_open(idle[2])
    finally:
        for sock in idle:
            sock.close()


def test_when_every_connection_is_busy_a_newcomer_gets_503(gw: GatewayServer):
    """Three requests whose bodies are still coming hold all three places."""
    busy = [connect(gw) for _ in range(3)]
    try:
        for sock in busy:
            sock.sendall(
                head(
                    "POST", "/v1/chat/completions", {**bearer(gw.demo_key), "Content-Length": "50"}
                )
            )
            sock.sendall(b"{")
        guard = gw.connection_guard()
        wait_until(lambda: guard.count == 3 and guard.idle == 0)  # the heads were read
        with connect(gw) as newcomer:
            answer = read_answer(newcomer)
        assert answer.status == 503
        assert answer.error_code() == "too_many_connections"
        assert json.loads(answer.body)["error"]["type"] == "service_unavailable"
        assert answer.headers["connection"] == "close"
        busy.pop().close()
        wait_until(lambda: guard.count == 2)  # the gateway saw the close
        assert httpx.get(f"{gw.base_url}/health").status_code == 200
    finally:
        for sock in busy:
            sock.close()
