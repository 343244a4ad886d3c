"""Limits on what a client sends, on real sockets: a body past the limit is
refused before it is read (both the metered routes and Starlette's), a caller
without a valid key before a byte of its body is read, a head past the header
limit, a head or a body that takes too long."""

from __future__ import annotations

import contextlib
import json
import select
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.harness import GatewayServer
from tests.raw_http import WAIT, bearer, closed_by_server, connect, head, read_answer

MiB = 1 << 20
CHAT = "/v1/chat/completions"


GATEWAY_ENV = {"GATEWAY_MAX_BODY_BYTES": str(MiB)}


@pytest.fixture(scope="module")
def gw(module_gateway: GatewayServer) -> GatewayServer:
    """One gateway for the tests that change nothing in it (a 1 MiB body limit)."""
    return module_gateway


@pytest.fixture
def routes(gw: GatewayServer) -> dict[str, dict[str, str]]:
    """A metered route (its own body reading) and an admin one (through Starlette)."""
    return {CHAT: bearer(gw.demo_key), "/admin/users": bearer(gw.admin_key)}


@pytest.mark.parametrize("path", [CHAT, "/admin/users"])
def test_a_declared_oversized_body_is_refused_before_any_of_it_is_sent(
    gw: GatewayServer, routes: dict[str, dict[str, str]], path: str
):
    """Only the head goes out: the 413 comes without waiting for the body."""
    with connect(gw) as sock:
        sock.sendall(head("POST", path, {**routes[path], "Content-Length": str(100 * MiB)}))
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.error_code() == "request_too_large"
    assert f"({MiB} bytes)" in json.loads(answer.body)["error"]["message"]


@pytest.mark.parametrize("path", [CHAT, "/admin/users"])
def test_a_chunked_oversized_body_is_refused_once_past_the_limit(
    gw: GatewayServer, routes: dict[str, dict[str, str]], path: str
):
    """No size declared: the gateway reads up to the limit and answers 413 while
    the client is still sending; it never takes in the whole 100 MiB."""
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    sent = 0
    with connect(gw) as sock:
        sock.sendall(head("POST", path, {**routes[path], "Transfer-Encoding": "chunked"}))
        while sent < 100 * MiB:
            sock.sendall(chunk)
            sent += 64 * 1024
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.error_code() == "request_too_large"
    assert sent < 50 * MiB  # far from all of it, whatever the socket buffers took


def test_the_connection_serves_again_after_a_413(gw: GatewayServer):
    def body() -> Iterator[bytes]:
        yield from (b"x" * 65536 for _ in range(64))  # 4 MiB, chunked

    with httpx.Client(base_url=gw.base_url, headers=bearer(gw.demo_key), timeout=WAIT) as client:
        assert client.post(CHAT, content=body()).status_code == 413
        ok = client.post(
            CHAT, json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("key", [None, "gw-not-a-key"])
def test_a_caller_without_a_valid_key_is_refused_before_its_body_is_read(
    gw: GatewayServer, key: str | None
):
    """The head declares a small body that never comes: the 401 does not wait for it."""
    headers = {"Content-Length": "1000", **(bearer(key) if key else {})}
    with connect(gw) as sock:
        sock.sendall(head("POST", CHAT, headers))
        answer = read_answer(sock)
    assert answer.status == 401
    assert answer.error_code() == "invalid_api_key"


def test_a_head_past_the_header_limit_is_refused_431(gw: GatewayServer):
    """A 1 MiB Authorization header: 431 once 16 KiB of head arrived, then closed."""
    with connect(gw) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
        # The gateway may close before taking it all; its answer is sent by then.
        with contextlib.suppress(OSError):
            sock.sendall(b"Authorization: Bearer " + b"k" * MiB + b"\r\n\r\n")
        answer = read_answer(sock)
        assert closed_by_server(sock) is not None
    assert answer.status == 431
    assert answer.error_code() == "request_header_fields_too_large"


def test_a_head_just_under_the_header_limit_is_served(gw: GatewayServer):
    response = httpx.get(f"{gw.base_url}/health", headers={"X-Padding": "p" * 15_000})
    assert response.status_code == 200
    too_big = httpx.get(f"{gw.base_url}/health", headers={"X-Padding": "p" * 17_000})
    assert too_big.status_code == 431


def test_a_request_that_is_not_http_gets_an_openai_shaped_400(gw: GatewayServer):
    with connect(gw) as sock:
        sock.sendall(b"HELLO THERE\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.error_code() == "invalid_http_request"


def test_slow_and_silent_heads_are_closed_after_the_header_timeout(
    make_gateway: Callable[..., GatewayServer],
):
    """A byte every 50 ms, for twice the 0.5 s header timeout: closed without a
    word, like the connection that sent nothing; a normal client is served."""
    gw = make_gateway(env={"GATEWAY_HEADER_TIMEOUT_SECONDS": "0.5"})
    silent = connect(gw)
    slow = [connect(gw) for _ in range(5)]
    try:
        for byte in b"GET /health HTTP/1.1\r\n":
            for sock in slow:
                with contextlib.suppress(OSError):  # closed already
                    sock.sendall(bytes((byte,)))
            time.sleep(0.05)
        assert [closed_by_server(sock) for sock in [silent, *slow]] == [b""] * 6
        assert httpx.get(f"{gw.base_url}/health").status_code == 200
    finally:
        for sock in [silent, *slow]:
            sock.close()


def test_a_body_that_takes_too_long_is_answered_408(make_gateway: Callable[..., GatewayServer]):
    gw = make_gateway(env={"GATEWAY_BODY_TIMEOUT_SECONDS": "0.5"})
    with connect(gw) as sock:
        sock.sendall(head("POST", CHAT, {**bearer(gw.demo_key), "Content-Length": "100"}))
        sock.sendall(b'{"model": "mock-1", ')  # and the rest never comes
        answer = read_answer(sock)
        assert closed_by_server(sock) is not None
    assert answer.status == 408
    assert answer.error_code() == "request_timeout"
    assert httpx.get(f"{gw.base_url}/health").status_code == 200


def test_a_client_that_expects_100_continue_is_told_to_send_its_body(gw: GatewayServer):
    """The `100 Continue` is the first thing written for the request (what the
    edge holds back to join with what follows): it still leaves before the body
    it asks for arrives, and the answer follows on the same connection."""
    body = json.dumps({"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]})
    headers = {
        **bearer(gw.demo_key),
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Expect": "100-continue",
    }
    with connect(gw) as sock:
        sock.sendall(head("POST", CHAT, headers))
        interim = b""
        while b"\r\n\r\n" not in interim:
            more = sock.recv(65536)
            assert more, f"closed before the 100 Continue: {interim!r}"
            interim += more
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body.encode())
        answer = read_answer(sock)
        assert answer.status == 200, answer.body
        assert json.loads(answer.body)["usage"]["total_tokens"] > 0
        sock.sendall(head("GET", "/health", {}))  # the connection serves again
        assert read_answer(sock).status == 200
