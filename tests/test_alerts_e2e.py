"""Budget alerts end to end: a gateway on a real socket sends each threshold
once per window to a local webhook receiver, signed, retried after a 500; a
low balance alert likewise; deliveries are listed in the admin API and claimed
once in the SQLite file."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from config_store.writes import StandaloneWrites
from gateway.alerts.delivery_logs import SqliteDeliveryLog
from gateway.alerts.signing import SIGNATURE_HEADER, verify
from gateway.alerts.webhook import Alert
from tests.harness import GatewayServer, usd_text
from tests.test_budgets import BODY, admin, chat, created
from tests.test_ledger import fresh_db

SECRET = "whsec-test-secret"


class Receiver:
    """A webhook receiver on a loopback port: records every POST and answers
    the statuses it is given, in order (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.arrived:
                    receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gateway"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, seconds: float = 60) -> None:
        """Until `count` POSTs arrived (a bound on the wait, not a timing claim)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.posts) >= count, seconds), self.posts

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver([500])  # the first delivery attempt fails
    yield found
    found.close()


def deliveries(gw: GatewayServer) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = admin(gw, "GET", "/admin/alerts").json()["data"]
    return data


def settled(gw: GatewayServer, count: int) -> list[dict[str, Any]]:
    """The deliveries, once `count` of them are no longer pending."""
    deadline = time.monotonic() + 60  # bounds the wait only
    while time.monotonic() < deadline:
        found = deliveries(gw)
        if len(found) >= count and all(d["status"] != "pending" for d in found):
            return found
        time.sleep(0.01)
    raise AssertionError(deliveries(gw))


def test_each_threshold_is_sent_once_signed_and_retried_after_a_500(
    make_gateway: Any, receiver: Receiver
):
    gw = make_gateway(
        env={"GATEWAY_ALERT_WEBHOOK_URL": receiver.url, "GATEWAY_ALERT_WEBHOOK_SECRET": SECRET}
    )
    key = gw.add_user("ada", 10**12)
    assert chat(gw, key).status_code == 200
    [first] = gw.charges("ada")
    cost = -first["amount_nano"]  # each request here costs the same
    created(
        gw,
        "/admin/budgets",
        {
            "id": "ada-day",
            "scope": "user",
            "subject": "ada",
            "window": "daily",
            "limit_usd": usd_text(100 * cost),
            "alert_percents": [1, 2, 4],
        },
    )
    assert chat(gw, key).status_code == 200  # 2 %: 1 % and 2 % are crossed
    receiver.wait_for(3)  # two alerts, one of them tried twice
    assert chat(gw, key).status_code == 200  # 3 %: no threshold between 2 and 3
    assert chat(gw, key).status_code == 200  # 4 %
    receiver.wait_for(4)
    found = settled(gw, 3)

    assert sorted(int(d["key"].rsplit(":", 1)[1]) for d in found) == [1, 2, 4]
    assert {d["status"] for d in found} == {"delivered"}
    assert sorted(d["attempts"] for d in found) == [1, 1, 2]
    assert len(receiver.posts) == 4  # each threshold once; the 500 tried again
    for headers, body in receiver.posts:
        assert verify(SECRET, headers[SIGNATURE_HEADER], body, now=int(time.time()))
        assert not verify("another-secret", headers[SIGNATURE_HEADER], body, now=int(time.time()))
        assert headers["x-gateway-delivery"] == json.loads(body)["id"]
    bodies = {json.loads(b)["threshold_percent"]: json.loads(b) for _, b in receiver.posts}
    two = bodies[2]
    assert two["event"] == "budget.threshold"
    assert two["budget"]["id"] == "ada-day" and two["budget"]["window"] == "daily"
    assert two["spent_usd"] == usd_text(2 * cost) and two["resets_at"]
    assert bodies[4]["spent_usd"] == usd_text(4 * cost)
    # The budget lowered to what is spent: the next request is refused, changing nothing.
    lowered = admin(gw, "PATCH", "/admin/budgets/ada-day", {"limit_usd": usd_text(4 * cost)})
    assert lowered.status_code == 200, lowered.text
    before = gw.query("SELECT * FROM ledger ORDER BY rowid")
    assert chat(gw, key).json()["error"]["code"] == "budget_exceeded"
    assert gw.query("SELECT * FROM ledger ORDER BY rowid") == before


def test_a_low_balance_alert_fires_once(make_gateway: Any, receiver: Receiver):
    receiver.statuses.clear()
    gw = make_gateway(
        env={"GATEWAY_ALERT_WEBHOOK_URL": receiver.url, "GATEWAY_ALERT_WEBHOOK_SECRET": SECRET}
    )
    key = gw.add_user("bob", 10**12)
    assert chat(gw, key).status_code == 200
    balance = gw.balance("bob")
    created(gw, "/admin/balance-alerts", {"account": "bob", "below_usd": usd_text(balance)})
    assert chat(gw, key).status_code == 200 and chat(gw, key).status_code == 200
    [delivery] = settled(gw, 1)
    assert delivery["event"] == "balance.low" and delivery["status"] == "delivered"
    body = json.loads(receiver.posts[0][1])
    assert body["account"] == "bob" and body["alert_id"] == "bob-low"
    assert len(receiver.posts) == 1


def test_without_a_webhook_alerts_are_still_recorded(gateway: GatewayServer):
    key = gateway.add_user("cy", 10**12)
    created(
        gateway,
        "/admin/budgets",
        {
            "scope": "user",
            "subject": "cy",
            "window": "monthly",
            "limit_usd": "0.01",
            "alert_percents": [1],
        },
    )
    huge = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={**BODY, "messages": [{"role": "user", "content": "x " * 20000}]},
        timeout=60,
    )
    assert huge.status_code == 200, huge.text
    [delivery] = settled(gateway, 1)
    assert (delivery["status"], delivery["last_error"]) == (
        "skipped",
        "no webhook URL is configured",
    )
    listing = admin(gateway, "GET", "/admin/alerts").json()
    assert listing["webhook_configured"] is False


async def test_a_key_is_claimed_once_in_the_sqlite_file(tmp_path: Path):
    path = tmp_path / "gateway.db"
    await fresh_db(path)
    alert = Alert("budget:x:y:2026-12-07:50", "budget.threshold", {"n": 1}, "2026-12-07T00:00:00")
    writes = [StandaloneWrites(path), StandaloneWrites(path)]  # two processes on one file
    one, other = SqliteDeliveryLog(path, writes[0]), SqliteDeliveryLog(path, writes[1])
    try:
        assert await one.claim(alert) is True
        assert await other.claim(alert) is False  # already sent by the other
        [pending] = await other.recent(10)
        assert (pending.key, pending.status, pending.attempts) == (alert.key, "pending", 0)
    finally:
        for each in writes:
            await each.close()
