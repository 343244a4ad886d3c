"""The gateway's HTTP/1.1 client against a real local server that answers each
request with the bytes a test scripts: keep-alive, the three ways a body ends,
what is refused, and every deadline."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.providers.http1 import (
    MAX_HEAD_BYTES,
    BadAnswer,
    BadRequest,
    ConnectFailed,
    Disconnected,
    Timeouts,
    request_head,
    split_url,
)
from gateway.providers.http_connection import Response
from gateway.providers.http_pool import Pool

Answer = Callable[[bytes, asyncio.StreamWriter], "asyncio.Future[None] | None"]
FAST = Timeouts(connect=2.0, read=2.0, total=5.0)


class Scripted:
    """A server whose connections answer every request with `answer(head, writer)`."""

    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.answer: Callable[[bytes, asyncio.StreamWriter], object] = ok_answer
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.heads.append(head + body)
                result = self.answer(head, writer)
                if asyncio.iscoroutine(result):
                    await result
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok_answer(head: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )


@asynccontextmanager
async def scripted() -> AsyncIterator[tuple[Scripted, Pool]]:
    server = Scripted()
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    pool = Pool(asyncio.get_running_loop(), keepalive=30.0)
    try:
        yield server, pool
    finally:
        pool.close()
        listening.close()


async def read_all(response: Response) -> bytes:
    pieces = []
    while (piece := await response.read_piece()) is not None:
        pieces.append(piece)
    response.release()
    return b"".join(pieces)


def url(server: Scripted, path: str = "/v1/chat/completions") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_answers_are_read_and_one_connection_is_kept_alive_for_the_next():
    async with scripted() as (server, pool):
        for _ in range(3):
            response = await pool.request("POST", url(server), {"X-A": "1"}, b"{}", FAST)
            assert response.status == 200
            assert response.headers["content-type"] == "application/json"
            assert await read_all(response) == b"{}"
        assert server.connections == 1
        head = server.heads[0]
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in head
        assert b"Accept-Encoding: identity\r\n" in head and b"Content-Length: 2\r\n" in head


async def test_a_chunked_body_and_a_body_that_ends_with_the_connection():
    async with scripted() as (server, pool):
        server.answer = lambda head, w: w.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        assert await read_all(await pool.request("GET", url(server), {}, None, FAST)) == (
            b"hello world"
        )

        def until_close(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
            writer.close()

        server.answer = until_close
        response = await pool.request("GET", url(server), {}, None, FAST)
        assert await read_all(response) == b"all of it"
        assert server.connections == 1  # the chunked answer kept its connection


async def test_a_response_dropped_before_its_end_closes_its_connection():
    async with scripted() as (server, pool):
        server.answer = lambda head, w: w.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
        )
        response = await pool.request("GET", url(server), {}, None, FAST)
        assert await response.read_piece() == b"half"
        response.release()
        response.close()  # after release: nothing more happens
        server.answer = ok_answer
        assert await read_all(await pool.request("GET", url(server), {}, None, FAST)) == b"{}"
        assert server.connections == 2


async def test_a_connection_the_provider_closed_while_idle_is_replaced_once():
    async with scripted() as (server, pool):

        def answer_then_close(head: bytes, writer: asyncio.StreamWriter) -> None:
            ok_answer(head, writer)
            writer.close()  # keep-alive said, but the server drops it right after

        server.answer = answer_then_close
        assert await read_all(await pool.request("POST", url(server), {}, b"{}", FAST)) == b"{}"
        await asyncio.sleep(0.05)
        server.answer = ok_answer
        assert await read_all(await pool.request("POST", url(server), {}, b"{}", FAST)) == b"{}"
        assert server.connections == 2


async def test_a_cut_answer_is_disconnected_and_bad_bytes_are_a_bad_answer():
    async with scripted() as (server, pool):

        def cut(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            writer.close()

        server.answer = cut
        response = await pool.request("GET", url(server), {}, None, FAST)
        with pytest.raises(Disconnected):
            await read_all(response)

        server.answer = lambda head, w: w.write(b"SMTP ready\r\n\r\n")
        with pytest.raises(BadAnswer, match="not valid HTTP"):
            await pool.request("GET", url(server), {}, None, FAST)

        big = b"X-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n"
        server.answer = lambda head, w: w.write(b"HTTP/1.1 200 OK\r\n" + big + b"\r\n")
        with pytest.raises(BadAnswer, match="head larger than"):
            await pool.request("GET", url(server), {}, None, FAST)


async def test_a_small_head_with_a_large_body_in_one_piece_is_read():
    async with scripted() as (server, pool):
        body = b"b" * (3 * MAX_HEAD_BYTES)
        server.answer = lambda head, w: w.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        assert await read_all(await pool.request("GET", url(server), {}, None, FAST)) == body


async def test_deadlines_between_reads_and_in_all():
    async with scripted() as (server, pool):

        async def silent(head: bytes, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        server.answer = silent
        with pytest.raises(TimeoutError):
            await pool.request("GET", url(server), {}, None, Timeouts(read=0.2, total=5))

        async def trickle(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(20):
                writer.write(b"1\r\na\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)

        server.answer = trickle
        response = await pool.request("GET", url(server), {}, None, Timeouts(read=1, total=0.5))
        with pytest.raises(TimeoutError):
            await read_all(response)


async def test_what_the_client_refuses_to_send_and_where_it_cannot_connect():
    origin, target = split_url("https://api.example.com/v1/x?a=1")
    assert (origin.host_header, target) == ("api.example.com", "/v1/x?a=1")
    with pytest.raises(BadRequest):
        request_head("POST", origin, target, {"Authorization": "Bearer a\r\nX-Evil: 1"}, 0)
    with pytest.raises(BadRequest):
        split_url("ftp://example.com/")
    pool = Pool(asyncio.get_running_loop())
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "http://127.0.0.1:9/", {}, None, FAST)


async def test_a_slow_reader_is_not_timed_out_by_the_read_deadline_a_slow_provider_is():
    async with scripted() as (server, pool):

        async def two_pieces(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nb\r\n0\r\n\r\n")

        server.answer = two_pieces
        response = await pool.request("GET", url(server), {}, None, Timeouts(read=0.3, total=5))
        assert await response.read_piece() == b"a"
        await asyncio.sleep(0.6)  # the reader dawdles; both pieces have long arrived
        assert await read_all(response) == b"b"

        async def stalls(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
            await asyncio.sleep(5)

        server.answer = stalls
        response = await pool.request("GET", url(server), {}, None, Timeouts(read=0.3, total=5))
        assert await response.read_piece() == b"a"
        with pytest.raises(TimeoutError):
            await response.read_piece()


def self_signed(directory: Path) -> Path:
    """A certificate for 127.0.0.1 and its key, in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = directory / "server.pem"
    pem.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


async def test_https_is_verified_and_kept_alive(tmp_path: Path):
    pem = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(pem)
    server = Scripted()
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=server_side)
    port = listening.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(pem))
    pool = Pool(asyncio.get_running_loop(), tls=trusting)
    stranger = Pool(asyncio.get_running_loop())  # the system's roots: this server is unknown
    try:
        for _ in range(2):
            response = await pool.request("POST", f"https://127.0.0.1:{port}/v1/x", {}, b"{}", FAST)
            assert (response.status, await read_all(response)) == (200, b"{}")
        assert server.connections == 1
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.request("GET", f"https://127.0.0.1:{port}/", {}, None, FAST)
    finally:
        pool.close()
        stranger.close()
        listening.close()


def test_the_client_frames_the_message_itself():
    origin, target = split_url("http://example.com/v1/chat")
    head = request_head(
        "POST", origin, target, {"Content-Length": "999", "Host": "evil", "X-Key": "k"}, 2
    )
    assert head.count(b"Content-Length") == 1 and b"Content-Length: 2\r\n" in head
    assert b"Host: example.com\r\n" in head and b"evil" not in head
    with pytest.raises(BadRequest, match="cannot carry"):
        request_head("GET", origin, target, {"X-Name": "\u20ac"}, None)


async def test_a_burst_of_connections_to_a_host_costs_one_lookup(monkeypatch: pytest.MonkeyPatch):
    async with scripted() as (server, pool):
        loop = asyncio.get_running_loop()
        looked_up: list[str] = []
        real = loop.getaddrinfo

        async def resolver(host: str, port: int, **options: object) -> object:
            looked_up.append(host)
            await asyncio.sleep(0.05)
            return await real("127.0.0.1", port, **options)

        monkeypatch.setattr(loop, "getaddrinfo", resolver)
        origin = f"http://provider.test:{server.port}/v1/x"
        answers = await asyncio.gather(
            *(pool.request("GET", origin, {}, None, FAST) for _ in range(5))
        )
        assert [await read_all(answer) for answer in answers] == [b"{}"] * 5
        assert looked_up == ["provider.test"] and server.connections == 5
        assert f"Host: provider.test:{server.port}\r\n".encode() in server.heads[0]

        async def nowhere(host: str, port: int, **options: object) -> object:
            raise OSError("no such host")

        monkeypatch.setattr(loop, "getaddrinfo", nowhere)
        with pytest.raises(ConnectFailed, match="cannot look up"):
            await pool.request("GET", "http://elsewhere.test/", {}, None, FAST)


async def test_a_large_answer_read_slowly_holds_the_provider_back_and_arrives_whole():
    async with scripted() as (server, pool):
        body = bytes(range(256)) * 8192  # 2 MB, eight times what is buffered unread

        async def large(head: bytes, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for start in range(0, len(body), 65536):
                writer.write(body[start : start + 65536])
                await writer.drain()

        server.answer = large
        response = await pool.request("GET", url(server), {}, None, FAST)
        pieces = []
        while (piece := await response.read_piece()) is not None:
            pieces.append(piece)
            await asyncio.sleep(0.001)  # a slow reader
        response.release()
        assert b"".join(pieces) == body
        assert await read_all(await pool.request("GET", url(server), {}, None, FAST)) == body
        assert server.connections == 1
