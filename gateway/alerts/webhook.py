"""Alerts sent to the operator's webhook: each once, signed, retried, recorded.

`fire()` is what the request path calls: it puts the alert on a bounded queue and
never waits (a full queue drops the alert, with an error logged). `run()` is the
loop a supervisor keeps running: for each alert it claims the alert's key in the
delivery log, which is true once per key (across instances when the log is shared:
that is what makes each threshold fire once), then POSTs the body until an answer
is 2xx or `attempts` attempts have been made, waiting between them a backoff that
doubles from `first_backoff` to `max_backoff`. Every attempt is recorded in the log,
which is what the admin API shows. Alerts are delivered concurrently, up to
`CONCURRENCY` at a time, so that one slow receiver holds up no other alert.

The client is the gateway's own HTTP/1.1 client (`gateway.providers.http_pool`),
which never follows a redirect. Its errors become a short `last_error` where
they enter; neither that nor the log names the secret or the URL (whose query
may hold a token).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from gateway.alerts.signing import SIGNATURE_HEADER, sign
from gateway.providers.http1 import HttpError, Timeouts
from gateway.providers.http_pool import Pool

logger = logging.getLogger("gateway.alerts")

QUEUE_SIZE = 10_000
CONCURRENCY = 16
USER_AGENT = "llm-gateway-alerts"
DELIVERY_HEADER = "x-gateway-delivery"
NO_URL = "no webhook URL is configured"
_RESERVED = frozenset({"id", "event", "created_at"})  # the body's own fields


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # once-only, e.g. "budget:team:eng:daily:2026-12-07:80"
    event: str  # "budget.threshold", "balance.low"
    payload: Mapping[str, Any]  # JSON-able; its fields join the body's
    created_at: str  # ISO 8601

    def __post_init__(self) -> None:
        if clash := sorted(_RESERVED.intersection(self.payload)):
            raise ValueError(f"an alert's payload may not hold {clash}: the body's own fields")

    def body(self) -> bytes:
        head = {"id": self.key, "event": self.event, "created_at": self.created_at}
        return orjson.dumps({**head, **self.payload})


@dataclass(slots=True)
class Delivery:
    key: str
    event: str
    body: str  # the JSON text sent
    attempts: int
    status: str  # "pending", "delivered", "failed" or "skipped"
    last_status: int | None  # the HTTP status of the last attempt, if it got an answer
    last_error: str | None  # short; never the secret or the URL
    created_at: str
    delivered_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryLog(Protocol):
    async def claim(self, alert: Alert) -> bool:
        """True the first time `alert.key` is claimed, False ever after."""
        ...

    async def record(self, delivery: Delivery) -> None:
        """Insert the delivery, or update the one with its key."""
        ...

    async def recent(self, limit: int) -> list[Delivery]:
        """The newest `limit` deliveries, newest first."""
        ...


class MemoryDeliveryLog:
    """The log of one process, for when no shared one is configured, and for tests.
    It keeps the last `keep` deliveries, and every key it has claimed."""

    def __init__(self, *, keep: int = 1_000) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._keep = keep
        self._claimed: set[str] = set()
        self._deliveries: dict[str, Delivery] = {}  # in the order first recorded

    async def claim(self, alert: Alert) -> bool:
        if alert.key in self._claimed:
            return False
        self._claimed.add(alert.key)
        return True

    async def record(self, delivery: Delivery) -> None:
        # A copy: the sender goes on changing its own as attempts are made.
        self._deliveries[delivery.key] = replace(delivery)
        while len(self._deliveries) > self._keep:
            del self._deliveries[next(iter(self._deliveries))]

    async def recent(self, limit: int) -> list[Delivery]:
        newest = list(reversed(self._deliveries.values()))[: max(limit, 0)]
        return [replace(delivery) for delivery in newest]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _reason(exc: HttpError) -> str:
    """Why a request got no answer, in a few words: the error's own message
    names the host and port."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        return f"{type(exc).__name__}: TLS {cause.reason or 'handshake failed'}"
    if isinstance(cause, OSError) and cause.errno is not None and cause.errno > 0:
        return f"{type(exc).__name__}: {os.strerror(cause.errno)}"
    return type(exc).__name__


class WebhookSender:
    def __init__(
        self,
        url: str,
        secret: str,
        log: DeliveryLog,
        *,
        attempts: int = 6,
        first_backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must start with http:// or https://")
        if url and not secret:
            raise ValueError("a webhook URL needs a signing secret")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= first_backoff <= max_backoff:
            raise ValueError("backoffs must satisfy 0 <= first_backoff <= max_backoff")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._url = url
        self._secret = secret
        self._log = log
        self._attempts = attempts
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._on_result = on_result
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_SIZE)
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[Any] | None = None

    def fire(self, alert: Alert) -> None:
        """Queue the alert for delivery; never waits."""
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            logger.error("alert queue full; dropped key=%s event=%s", alert.key, alert.event)
            self._report(alert.event, "dropped")

    async def run(self) -> None:
        """Deliver queued alerts until cancelled (by close(), or its supervisor)."""
        if self._runner is not None and not self._runner.done():
            raise RuntimeError("this sender is already running")
        self._runner = runner = asyncio.current_task()
        try:
            pool = Pool(asyncio.get_running_loop())
            try:
                await self._dispatch(pool)
            finally:
                pool.close()
        finally:
            if self._runner is runner:  # a supervisor may call run() again in this task
                self._runner = None

    async def _dispatch(self, pool: Pool) -> None:
        try:
            while True:
                alert = await self._queue.get()
                await self._slots.acquire()
                task = asyncio.create_task(
                    self._handle(pool, alert), name=f"gateway:alert:{alert.key}"
                )
                self._tasks.add(task)
                # A callback rather than a `finally`: it runs even for a task
                # cancelled before it started.
                task.add_done_callback(self._finished)
        finally:  # the pool closes after this: nothing may be left using it
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop the loop and every delivery in flight (those stay "pending")."""
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            await asyncio.wait([runner])

    async def drained(self) -> None:
        """Wait until every alert fired so far has been handled (run() must be running)."""
        await self._queue.join()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        self._queue.task_done()

    async def _handle(self, pool: Pool, alert: Alert) -> None:
        try:
            await self._deliver(pool, alert)
        except Exception:
            logger.exception("alert not delivered: key=%s event=%s", alert.key, alert.event)

    async def _deliver(self, pool: Pool, alert: Alert) -> None:
        body = alert.body()  # first: an alert that cannot be encoded claims nothing
        if not await self._log.claim(alert):
            logger.debug("alert already fired: key=%s event=%s", alert.key, alert.event)
            return
        delivery = Delivery(
            key=alert.key,
            event=alert.event,
            body=body.decode(),
            attempts=0,
            status="pending",
            last_status=None,
            last_error=None,
            created_at=alert.created_at,
            delivered_at=None,
        )
        if self._url:
            await self._log.record(delivery)  # visible while the first attempt is made
            await self._post_until_done(pool, delivery, body)
        else:
            delivery.status, delivery.last_error = "skipped", NO_URL
            await self._log.record(delivery)
        level = logging.INFO if delivery.status == "delivered" else logging.WARNING
        logger.log(
            level,
            "alert %s: key=%s event=%s attempts=%d last_error=%s",
            delivery.status,
            delivery.key,
            delivery.event,
            delivery.attempts,
            delivery.last_error,
        )
        self._report(delivery.event, delivery.status)

    async def _post_until_done(self, pool: Pool, delivery: Delivery, body: bytes) -> None:
        backoff = self._first_backoff
        while True:
            delivery.attempts += 1
            delivery.last_status, delivery.last_error = await self._post(pool, delivery, body)
            if delivery.last_error is None:
                delivery.status, delivery.delivered_at = "delivered", _iso(self._clock())
            elif delivery.attempts >= self._attempts:
                delivery.status = "failed"
            await self._log.record(delivery)
            if delivery.status != "pending":
                return
            await self._sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _post(
        self, pool: Pool, delivery: Delivery, body: bytes
    ) -> tuple[int | None, str | None]:
        """One attempt: the answer's status, and why it failed (None if it did not).
        Only the status is read: the connection is closed after it."""
        headers = {
            "user-agent": USER_AGENT,
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, int(self._clock()), body),
            DELIVERY_HEADER: delivery.key,
        }
        timeouts = Timeouts(connect=None, read=None, total=self._timeout)
        try:
            response = await pool.request("POST", self._url, headers, body, timeouts)
        except TimeoutError:
            return None, f"timed out after {self._timeout:g}s"
        except HttpError as exc:
            return None, _reason(exc).replace(self._secret, "[secret]")
        status = response.status
        response.close()
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

    def _report(self, event: str, status: str) -> None:
        if self._on_result is not None:
            self._on_result(event, status)
