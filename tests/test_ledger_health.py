"""A ledger that cannot write, seen through the gateway: the request it could not
record gets 503 and is not charged, /health and /metrics say so, the next
requests are served, and the gateway still shuts down."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

import httpx

from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer
from tests.test_errors import assert_error
from tests.test_metrics import chat, scrape, value


def ledger_rows(gw: GatewayServer) -> int:
    return int(gw.query("SELECT COUNT(*) FROM ledger")[0][0])


def health(gw: GatewayServer) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/health", timeout=30)


def test_a_ledger_that_cannot_write_answers_503_and_recovers(
    make_gateway: Callable[..., GatewayServer], fake_openai: FakeOpenAI
):
    gw = make_gateway({"GATEWAY_LEDGER_BUSY_TIMEOUT_SECONDS": "0.2"})
    admin = Admin(gw)
    assert chat(gw).status_code == 200
    assert health(gw).status_code == 200
    balance, rows = gw.balance(), ledger_rows(gw)

    # Another connection holds the write lock past the ledger's busy timeout.
    lock = sqlite3.connect(gw.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        failed = chat(gw)  # admitted, served, and then its row could not be written
        assert_error(failed, 503, "ledger_unavailable", "service_unavailable")
        calls = fake_openai.calls
        # Now known not to write: requests and top-ups are refused before anything
        # is done (no provider is paid for a request that could not be recorded).
        assert_error(chat(gw), 503, "ledger_unavailable", "service_unavailable")
        assert fake_openai.calls == calls
        topup = admin.post("/admin/users/demo/topup", {"amount_usd": "1.00"})
        assert_error(topup, 503, "ledger_unavailable", "service_unavailable")
        down = health(gw)
        assert down.status_code == 503
        ledger = down.json()["ledger"]
        assert (ledger["writing"], ledger["healthy"], ledger["failed_batches"]) == (False, False, 1)
        assert ledger["failed_rows"] == 1 and ledger["queued"] == 0
        assert "locked" in ledger["last_error"]
        samples = scrape(gw)
        assert value(samples, "gateway_ledger_up") == 0
        assert value(samples, "gateway_ledger_failures_total") == 1
        assert value(samples, "gateway_ledger_failed_rows_total") == 1
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # Nothing of the refused requests or the top-up was written or charged.
    assert (gw.balance(), ledger_rows(gw)) == (balance, rows)

    deadline = time.monotonic() + 60  # the writer finds the lock free again: bounded wait
    while health(gw).status_code != 200:
        assert time.monotonic() < deadline, "the ledger never recovered"
        time.sleep(0.05)
    served = chat(gw)
    assert served.status_code == 200
    assert health(gw).status_code == 200
    assert value(scrape(gw), "gateway_ledger_up") == 1
    assert ledger_rows(gw) == rows + 1
    charged = int(gw.query("SELECT amount_nano FROM ledger ORDER BY rowid DESC LIMIT 1")[0][0])
    assert gw.balance() == balance + charged
    reconciled = admin.ok(admin.get("/admin/reconcile"))
    assert reconciled["clean"] is True and reconciled["open_holds_nano"] == {}


def test_shutdown_completes_while_a_row_waits_for_a_locked_database(
    make_gateway: Callable[..., GatewayServer], fake_openai: FakeOpenAI
):
    gw = make_gateway({"GATEWAY_LEDGER_BUSY_TIMEOUT_SECONDS": "1"})
    assert chat(gw).status_code == 200
    lock = sqlite3.connect(gw.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    answers: list[int] = []

    def ask() -> None:
        try:
            answers.append(chat(gw).status_code)
        except httpx.HTTPError:
            answers.append(0)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        deadline = time.monotonic() + 30  # bounds the wait; nothing is timed
        while health(gw).json()["ledger"]["queued"] == 0:
            assert time.monotonic() < deadline, "the row never reached the ledger"
            time.sleep(0.01)
        serving = gw._thread
        assert serving is not None
        gw.stop()
        assert not serving.is_alive()  # the lifespan's shutdown finished
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        asking.join(timeout=30)
    assert answers in ([503], [0])  # refused, or cut off by the shutdown: never charged
    assert gw.query("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")[0][0] == 1
