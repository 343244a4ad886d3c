"""gateway.alerts.webhook against a real receiver on a loopback port.

The receiver is an aiohttp server in the test's own event loop; it records what
it is sent and answers a scripted sequence of statuses. Backoffs go through an
injected sleep that records the delay and returns at once, and the clock is fixed,
so nothing here waits on real time except the one timeout test."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.alerts.signing import SIGNATURE_HEADER, verify
from gateway.alerts.webhook import (
    NO_URL,
    QUEUE_SIZE,
    Alert,
    Delivery,
    MemoryDeliveryLog,
    WebhookSender,
)
from tests.test_http1 import self_signed

SECRET = "whsec_do-not-leak-me"
NOW = 1_765_000_000
NOW_ISO = "2025-12-06T05:46:40+00:00"
KEY = "budget:team:eng:daily:2026-12-07:80"
CREATED = "2026-12-07T10:00:00+00:00"


def budget_alert(key: str = KEY) -> Alert:
    return Alert(
        key=key,
        event="budget.threshold",
        payload={"team": "eng", "window": "daily", "percent": 80},
        created_at=CREATED,
    )


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers `statuses` in turn, the last one for ever after; a request whose
    delivery key starts with "slow" gets no answer at all."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Seen] = field(default_factory=list)
    slow_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Seen(headers, await request.read()))
        if headers["x-gateway-delivery"].startswith("slow"):
            self.slow_arrived.set()
            await asyncio.Event().wait()  # until the sender gives up on it
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if 300 <= status < 400:
            return web.Response(status=status, headers={"location": "/elsewhere"})
        return web.Response(status=status)

    async def elsewhere(self, request: web.Request) -> web.Response:
        raise AssertionError("a redirect was followed")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_route("*", "/elsewhere", receiver.elsewhere)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook?token=query-secret"
    yield receiver
    await runner.cleanup()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening, held for the test: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@dataclass
class Harness:
    sender: WebhookSender
    log: MemoryDeliveryLog
    delays: list[float]
    results: list[tuple[str, str]]

    async def deliveries(self) -> list[dict[str, Any]]:
        return [delivery.to_json() for delivery in await self.log.recent(100)]


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Harness]]:
    """Builds a sender and runs its loop; each is closed after the test."""
    running: list[tuple[WebhookSender, asyncio.Task[None]]] = []

    def make(url: str, *, log: MemoryDeliveryLog | None = None, **options: Any) -> Harness:
        log = MemoryDeliveryLog() if log is None else log
        delays: list[float] = []
        results: list[tuple[str, str]] = []

        async def sleep(seconds: float) -> None:
            delays.append(seconds)

        options = {
            "sleep": sleep,
            "clock": lambda: NOW,
            "on_result": lambda event, status: results.append((event, status)),
            **options,
        }
        sender = WebhookSender(url, SECRET, log, **options)
        running.append((sender, asyncio.create_task(sender.run())))
        return Harness(sender, log, delays, results)

    yield make
    for sender, task in running:
        await sender.close()
        assert task.cancelled()


def expected(**changes: Any) -> dict[str, Any]:
    body = budget_alert().body().decode()
    return {
        "key": KEY,
        "event": "budget.threshold",
        "body": body,
        "attempts": 1,
        "status": "delivered",
        "last_status": 200,
        "last_error": None,
        "created_at": CREATED,
        "delivered_at": NOW_ISO,
        **changes,
    }


async def test_a_delivery_is_signed_and_carries_the_alert(receiver, start):
    harness = start(receiver.url)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert len(receiver.requests) == 1
    seen = receiver.requests[0]
    assert verify(SECRET, seen.headers[SIGNATURE_HEADER], seen.body, now=NOW) is True
    assert seen.headers[SIGNATURE_HEADER].startswith(f"t={NOW},v1=")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-gateway-delivery"] == KEY
    assert seen.headers["user-agent"] == "llm-gateway-alerts"
    assert orjson.loads(seen.body) == {
        "id": KEY,
        "event": "budget.threshold",
        "created_at": CREATED,
        "team": "eng",
        "window": "daily",
        "percent": 80,
    }
    assert await harness.deliveries() == [expected()]
    assert harness.delays == []
    assert harness.results == [("budget.threshold", "delivered")]


async def test_a_500_then_a_200_is_delivered_on_the_second_attempt(receiver, start):
    receiver.statuses = [500, 200]
    harness = start(receiver.url, first_backoff=0.5)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert len(receiver.requests) == 2
    for seen in receiver.requests:
        assert verify(SECRET, seen.headers[SIGNATURE_HEADER], seen.body, now=NOW) is True
    assert await harness.deliveries() == [expected(attempts=2)]
    assert harness.delays == [0.5]
    assert harness.results == [("budget.threshold", "delivered")]


async def test_always_500_fails_after_the_last_attempt(receiver, start):
    receiver.statuses = [500]
    harness = start(receiver.url, attempts=3, first_backoff=0.25)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert len(receiver.requests) == 3
    assert await harness.deliveries() == [
        expected(
            attempts=3, status="failed", last_status=500, last_error="HTTP 500", delivered_at=None
        )
    ]
    assert harness.delays == [0.25, 0.5]
    assert harness.results == [("budget.threshold", "failed")]


async def test_the_backoff_doubles_up_to_its_maximum(receiver, start):
    receiver.statuses = [503]
    harness = start(receiver.url, attempts=6, first_backoff=1.0, max_backoff=5.0)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert harness.delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(receiver.requests) == 6


async def test_the_same_key_fired_twice_is_delivered_once(receiver, start):
    harness = start(receiver.url)
    harness.sender.fire(budget_alert())
    harness.sender.fire(budget_alert())
    await harness.sender.drained()
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert len(receiver.requests) == 1
    assert await harness.deliveries() == [expected()]
    assert harness.results == [("budget.threshold", "delivered")]


async def test_a_shared_log_fires_a_key_once_across_senders(receiver, start):
    first = start(receiver.url)
    second = start(receiver.url, log=first.log)
    first.sender.fire(budget_alert())
    second.sender.fire(budget_alert())
    await first.sender.drained()
    await second.sender.drained()

    assert len(receiver.requests) == 1
    assert first.results + second.results == [("budget.threshold", "delivered")]


async def test_a_receiver_not_listening_fails_without_naming_the_secret(closed_port, start):
    harness = start(f"http://127.0.0.1:{closed_port}/hook?token=query-secret", attempts=2)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    [delivery] = await harness.deliveries()
    assert delivery == expected(
        attempts=2,
        status="failed",
        last_status=None,
        last_error="ConnectFailed: Connection refused",
        delivered_at=None,
    )
    assert SECRET not in delivery["last_error"]
    assert "query-secret" not in delivery["last_error"]
    assert harness.delays == [1.0]
    assert harness.results == [("budget.threshold", "failed")]


async def test_an_empty_url_records_the_alert_as_skipped(start):
    harness = start("")
    harness.sender.fire(budget_alert())
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert await harness.deliveries() == [
        expected(
            attempts=0, status="skipped", last_status=None, last_error=NO_URL, delivered_at=None
        )
    ]
    assert NO_URL == "no webhook URL is configured"
    assert harness.results == [("budget.threshold", "skipped")]


async def test_a_redirect_is_not_followed(receiver, start):
    receiver.statuses = [307]
    harness = start(receiver.url, attempts=1)
    harness.sender.fire(budget_alert())
    await harness.sender.drained()

    assert len(receiver.requests) == 1
    assert await harness.deliveries() == [
        expected(status="failed", last_status=307, last_error="HTTP 307", delivered_at=None)
    ]


async def test_a_receiver_that_never_answers_times_out(receiver, start):
    harness = start(receiver.url, attempts=1, timeout=0.2)
    harness.sender.fire(budget_alert("slow:1"))
    await harness.sender.drained()

    [delivery] = await harness.deliveries()
    assert (delivery["status"], delivery["last_status"], delivery["last_error"]) == (
        "failed",
        None,
        "timed out after 0.2s",
    )


async def test_a_slow_receiver_holds_up_no_other_alert_and_close_cancels_it(receiver, start):
    done = asyncio.Event()
    harness = start(receiver.url, on_result=lambda event, status: done.set())
    harness.sender.fire(budget_alert("slow:1"))
    await receiver.slow_arrived.wait()
    harness.sender.fire(budget_alert("fast:1"))
    await done.wait()

    by_key = {d["key"]: d for d in await harness.deliveries()}
    assert (by_key["fast:1"]["status"], by_key["fast:1"]["attempts"]) == ("delivered", 1)
    assert (by_key["slow:1"]["status"], by_key["slow:1"]["attempts"]) == ("pending", 0)

    await harness.sender.close()
    by_key = {d["key"]: d for d in await harness.deliveries()}
    assert by_key["slow:1"]["status"] == "pending"


async def test_a_full_queue_drops_the_alert_without_blocking(caplog):
    results: list[tuple[str, str]] = []
    sender = WebhookSender(
        "", "", MemoryDeliveryLog(), on_result=lambda event, status: results.append((event, status))
    )
    for n in range(QUEUE_SIZE):
        sender.fire(budget_alert(f"k{n}"))
    with caplog.at_level(logging.ERROR, logger="gateway.alerts"):
        sender.fire(budget_alert("one-too-many"))

    assert results == [("budget.threshold", "dropped")]
    assert [r.getMessage() for r in caplog.records] == [
        "alert queue full; dropped key=one-too-many event=budget.threshold"
    ]


async def test_the_log_line_names_neither_the_secret_nor_the_url(receiver, start, caplog):
    receiver.statuses = [500]
    harness = start(receiver.url, attempts=2)
    with caplog.at_level(logging.DEBUG, logger="gateway.alerts"):
        harness.sender.fire(budget_alert())
        await harness.sender.drained()

    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts"]
    assert lines == [
        f"alert failed: key={KEY} event=budget.threshold attempts=2 last_error=HTTP 500"
    ]


def test_a_payload_may_not_overwrite_the_body_fields():
    with pytest.raises(ValueError, match="'id'"):
        Alert(key=KEY, event="balance.low", payload={"id": "x"}, created_at=CREATED)


@pytest.mark.parametrize(
    ("url", "secret", "options"),
    [
        ("ftp://example.test/hook", SECRET, {}),
        ("https://example.test/hook", "", {}),
        ("https://example.test/hook", SECRET, {"attempts": 0}),
        ("https://example.test/hook", SECRET, {"first_backoff": 2.0, "max_backoff": 1.0}),
        ("https://example.test/hook", SECRET, {"timeout": 0}),
    ],
)
def test_options_are_checked_when_the_sender_is_built(url, secret, options):
    with pytest.raises(ValueError):
        WebhookSender(url, secret, MemoryDeliveryLog(), **options)


async def test_the_memory_log_keeps_copies_newest_first():
    log = MemoryDeliveryLog(keep=2)
    assert await log.claim(budget_alert("a")) is True
    assert await log.claim(budget_alert("a")) is False
    delivery = Delivery("a", "balance.low", "{}", 0, "pending", None, None, CREATED, None)
    await log.record(delivery)
    delivery.attempts = 5  # the log's copy is not changed
    await log.record(
        Delivery("b", "balance.low", "{}", 1, "failed", 500, "HTTP 500", CREATED, None)
    )
    await log.record(Delivery("c", "balance.low", "{}", 1, "delivered", 200, None, CREATED, None))

    assert [(d.key, d.attempts) for d in await log.recent(10)] == [("c", 1), ("b", 1)]
    assert [d.key for d in await log.recent(1)] == ["c"]
    assert await log.recent(0) == []


async def test_one_loop_at_a_time_and_a_closed_sender_runs_again(receiver, start):
    harness = start(receiver.url)
    harness.sender.fire(budget_alert("first"))
    await harness.sender.drained()  # the loop has started
    with pytest.raises(RuntimeError, match="already running"):
        await harness.sender.run()
    await harness.sender.close()

    again = asyncio.create_task(harness.sender.run())
    harness.sender.fire(budget_alert())
    await harness.sender.drained()
    await harness.sender.close()

    assert again.cancelled()
    assert [seen.headers["x-gateway-delivery"] for seen in receiver.requests] == ["first", KEY]


class BrokenLog(MemoryDeliveryLog):
    async def claim(self, alert: Alert) -> bool:
        if alert.key == "broken":
            raise OSError("the log is down")
        return await super().claim(alert)


async def test_a_failing_log_is_logged_and_the_loop_goes_on(receiver, start, caplog):
    harness = start(receiver.url, log=BrokenLog())
    with caplog.at_level(logging.ERROR, logger="gateway.alerts"):
        harness.sender.fire(budget_alert("broken"))
        harness.sender.fire(budget_alert())
        await harness.sender.drained()

    assert [r.getMessage() for r in caplog.records] == [
        "alert not delivered: key=broken event=budget.threshold"
    ]
    assert await harness.deliveries() == [expected()]


async def test_a_receiver_with_an_unknown_certificate_fails_in_a_few_plain_words(
    tmp_path: Path, start
):
    """Verified against the system's roots, a self-signed receiver is refused:
    the error says it was TLS, not the OpenSSL error number read as a system one."""
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(self_signed(tmp_path))

    async def accept(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_side).start()
    try:
        port = runner.addresses[0][1]
        harness = start(f"https://127.0.0.1:{port}/hook?token=query-secret", attempts=1)
        harness.sender.fire(budget_alert())
        await harness.sender.drained()
        [delivery] = await harness.deliveries()
    finally:
        await runner.cleanup()
    assert (delivery["status"], delivery["last_status"]) == ("failed", None)
    assert delivery["last_error"] == "ConnectFailed: TLS CERTIFICATE_VERIFY_FAILED"
