"""The HTTP/1.1 client the gateway calls providers with: asyncio protocols,
httptools' parser (the one uvicorn serves with), and a pool of keep-alive
connections per origin.

It does what calling a provider needs and no more: POST and GET with the whole
body in hand, a response read in pieces as they arrive (so a stream can be
relayed), TLS, keep-alive, and three deadlines. A call costs less than half
the CPU it did through aiohttp's client, which it replaced (see
bench/README.md). It follows no redirects, keeps no cookies, reads no proxy
settings and decodes no Content-Encoding: the caller does that, within bounds
(gateway.providers.bounded_decoding).

Errors, all raised where they happen and translated by the caller
(gateway.providers.upstream):

    HttpError                 the exchange failed; nothing more can be read
      ConnectFailed           no connection (DNS, refused, TLS handshake)
      Disconnected            the provider closed before its answer ended
      BadAnswer               not HTTP/1.1, or a head larger than MAX_HEAD_BYTES
      BadRequest              a URL or header the client will not send (CR, LF,
                              NUL, or what latin-1 cannot carry)
    TimeoutError              a deadline passed (connect, between reads, total)

Deadlines (`Timeouts`): `connect` bounds opening a connection (TCP and TLS);
`read` the wait for each next piece of the answer, its head included, so a
stream that hangs midway ends too; `total` the whole exchange from the request
to the answer's last byte, a stream's included.

The pure part is here (what a request's head is, the errors, the deadlines);
gateway.providers.http_connection holds a connection and its response, and
gateway.providers.http_pool the pool of them.

A host's addresses are looked up once per five minutes, and once for all the
connections a burst opens together (gateway.providers.http_pool.Addresses).

A connection goes back to the pool only when its answer was read to the end
and both sides allow keep-alive; a response dropped before its end closes its
connection. An idle connection is closed after `keepalive` seconds. A request
sent on a reused connection that the provider closed before answering a byte
(it timed the connection out meanwhile) is sent once more on a new one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
# Headers the client writes itself, from the URL and the body.
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class HttpError(Exception):
    """The exchange failed; the message says how."""


class ConnectFailed(HttpError):
    pass


class Disconnected(HttpError):
    pass


class BadAnswer(HttpError):
    pass


class BadRequest(HttpError):
    pass


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; None for no deadline."""

    connect: float | None = 10.0
    read: float | None = 300.0
    total: float | None = 600.0


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@functools.lru_cache(maxsize=256)  # a process calls a handful of URLs, again and again
def split_url(url: str) -> tuple[Origin, str]:
    """The origin a URL names and the request target (path and query)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"not an http(s) URL: {url[:100]!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise BadRequest(f"a URL with a bad port: {url[:100]!r}") from exc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not _clean(target) or " " in target:
        raise BadRequest("a URL with spaces or line breaks in its path")
    return Origin(scheme, parts.hostname, port), target


def _clean(text: str) -> bool:
    """Free of what would end a line or a head early (CR, LF) or cut it (NUL)."""
    return "\r" not in text and "\n" not in text and "\0" not in text


def request_head(
    method: str, origin: Origin, target: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
    named = set()
    for name, value in headers.items():
        if not (_clean(name) and _clean(value)) or ":" in name:
            raise BadRequest(f"a header the client will not send ({name[:40]!r})")
        lowered = name.lower()
        if lowered in _OURS:
            continue  # the client frames the message itself
        named.add(lowered)
        lines.append(f"{name}: {value}\r\n")
    if "accept" not in named:
        lines.append("Accept: */*\r\n")
    if "accept-encoding" not in named:
        lines.append("Accept-Encoding: identity\r\n")
    if "user-agent" not in named:
        lines.append("User-Agent: llm-gateway\r\n")
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1", "strict")
    except UnicodeEncodeError as exc:
        raise BadRequest("a URL or header with characters HTTP/1.1 cannot carry") from exc
