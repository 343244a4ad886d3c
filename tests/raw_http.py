"""HTTP/1.1 by hand on a socket, for tests that must control every byte a
client sends and see every byte (or the silence) that comes back."""

from __future__ import annotations

import json
import socket

from tests.harness import GatewayServer

WAIT = 10.0  # only ever bounds a wait; nothing asserts how long a thing took


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def error_code(self) -> str:
        """The error's code; the body names the request id its header does."""
        body = json.loads(self.body)
        assert body["request_id"] == self.headers["x-request-id"], (body, self.headers)
        assert body["request_id"].startswith("req_")
        return str(body["error"]["code"])


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP/1.1 answer with a Content-Length, read from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return Answer(int(lines[0].split()[1]), headers, body)


def connect(gw: GatewayServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: gateway",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent until it closed the connection (EOF or reset), or
    None if it did not close it within WAIT."""
    received = b""
    try:
        while more := sock.recv(65536):
            received += more
    except ConnectionResetError:
        pass
    except TimeoutError:
        return None
    return received


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
