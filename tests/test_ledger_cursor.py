"""GET /admin/ledger pages in commit order: paging while rows are committed out
of `created_at` order sees every row exactly once (SQLite and Firestore)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from billing.firestore_ledger import FirestoreLedger
from billing.firestore_reports import FirestoreReports
from billing.ledger_types import LedgerEntry
from billing.reports import BadCursor, encode_cursor
from config_store.firestore_client import client
from tests.admin_client import Admin, error_of
from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import new_project
from tests.harness import GatewayServer
from tests.test_metrics import chat

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def earlier_and_earlier(i: int) -> str:
    """Each row admitted before every row committed so far."""
    return (EPOCH - timedelta(seconds=i)).isoformat()


def page_through(admin: Admin, done: threading.Event, **filters: str) -> list[str]:
    """Read pages of 7 until the writers are done and a page comes back empty."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        finished = done.is_set()  # before the read: an empty page after it is the end
        params: dict[str, Any] = {"limit": 7, **filters}
        if cursor:
            params["after"] = cursor
        page = admin.ok(admin.get("/admin/ledger", **params))
        seen += [row["request_id"] for row in page["data"]]
        seqs = [row["seq"] for row in page["data"]]
        assert seqs == sorted(seqs)
        if page["data"]:
            cursor = page["next"]
        elif finished:
            return seen


def test_paging_while_rows_commit_out_of_time_order_sees_each_once(
    gateway: GatewayServer, fake_openai: FakeOpenAI
):
    admin = Admin(gateway)
    for _ in range(3):
        assert chat(gateway).status_code == 200
    done = threading.Event()

    def write_backdated() -> None:
        with sqlite3.connect(gateway.db, isolation_level=None) as db:
            for i in range(150):
                db.execute(
                    "INSERT INTO ledger (request_id, user_id, kind, amount_nano, created_at) "
                    "VALUES (?, 'demo', 'adjust', 1, ?)",
                    (f"backdated-{i}", earlier_and_earlier(i)),
                )

    def serve() -> None:
        for _ in range(20):
            assert chat(gateway).status_code == 200

    writers = [threading.Thread(target=write_backdated), threading.Thread(target=serve)]
    for writer in writers:
        writer.start()
    everything: list[str] = []
    adjustments: list[str] = []

    def read_all() -> None:
        everything.extend(page_through(admin, done))

    def read_adjustments() -> None:
        adjustments.extend(page_through(admin, done, kind="adjust", user="demo"))

    readers = [threading.Thread(target=read_all), threading.Thread(target=read_adjustments)]
    for reader in readers:
        reader.start()
    for writer in writers:
        writer.join(timeout=60)
    done.set()
    for reader in readers:
        reader.join(timeout=60)

    stored = [row[0] for row in gateway.query("SELECT request_id FROM ledger ORDER BY rowid")]
    assert len(stored) == 1 + 23 + 150  # the opening top-up, the charges, the backdated rows
    assert everything == stored  # each row once, in commit order
    assert adjustments == [f"backdated-{i}" for i in range(150)]


def test_a_cursor_is_opaque_and_checked(gateway: GatewayServer):
    admin = Admin(gateway)
    first = admin.ok(admin.get("/admin/ledger", limit=1))
    assert [row["request_id"] for row in first["data"]] == ["seed:demo:opening-balance"]
    assert first["next"] and first["data"][0]["seq"] == 1
    assert admin.ok(admin.get("/admin/ledger", after=first["next"]))["data"] == []
    for bad in (
        "2026-01-01T00:00:00+00:00|req_1",  # the old created_at|request_id cursor
        "not a cursor",
        encode_cursor("firestore", "1", "req_1"),  # another store's
        encode_cursor("sqlite", "-1"),
        encode_cursor("sqlite", "9" * 40),
        "A" * 401,
    ):
        response = admin.get("/admin/ledger", after=bad)
        assert response.status_code == 400, bad
        error = error_of(response)
        assert (error["param"], error["code"]) == ("after", "invalid_cursor")


def test_firestore_pages_follow_commit_order(firestore_host: str, tmp_path: Path):
    project = new_project()

    async def run() -> tuple[list[str], list[str]]:
        ledger = FirestoreLedger(project, firestore_host, tmp_path / "outbox.db", flush_seconds=60)
        db = client(project, firestore_host)
        reports = FirestoreReports(lambda: db)
        shipped: list[str] = []
        seen: list[str] = []
        # The emulator, unlike Firestore, lets a query see part of a transaction
        # that is committing (a test of its own found 307 of 320 documents): pages
        # are read between shipments, not during one.
        shipping = asyncio.Lock()
        await ledger.start()
        try:
            writing = True

            async def write() -> None:
                nonlocal writing
                for batch in range(8):  # each shipment commits rows admitted before all others
                    for i in range(5):
                        n = batch * 5 + i
                        entry = LedgerEntry(
                            request_id=f"r{n:03}",
                            user_id="u1",
                            kind="adjust" if n % 2 else "charge",
                            amount_nano=-1,
                            created_at=earlier_and_earlier(n),
                        )
                        await ledger.submit(entry)
                        shipped.append(entry.request_id)
                    async with shipping:
                        await ledger.drained()
                    await asyncio.sleep(0)
                writing = False

            async def read() -> None:
                cursor: str | None = None
                while True:
                    finished = not writing
                    async with shipping:
                        page = await reports.page(user_id=None, kind=None, after=cursor, limit=3)
                    seen.extend(row["request_id"] for row in page.rows)
                    if page.rows:
                        cursor = page.next
                    elif finished:
                        return

            await asyncio.gather(write(), read())
            charges = await reports.page(user_id="u1", kind="charge", after=None, limit=100)
            assert [row["request_id"] for row in charges.rows] == shipped[::2]
            with pytest.raises(BadCursor):
                await reports.page(
                    user_id=None, kind=None, after=encode_cursor("sqlite", "1"), limit=3
                )
        finally:
            await ledger.close()
            db.close()
        return shipped, seen

    shipped, seen = asyncio.run(run())
    assert len(shipped) == 40
    assert seen == shipped  # each once; within a shipment by request id, which is also this order


def test_pages_filter_by_user_and_kind(make_gateway: Callable[..., GatewayServer]):
    gw = make_gateway()
    gw.add_user("alice", 5 * 10**9)
    admin = Admin(gw)
    topups = admin.ok(admin.get("/admin/ledger", kind="topup", limit=1))
    rest = admin.ok(admin.get("/admin/ledger", kind="topup", after=topups["next"]))
    ids = [row["request_id"] for row in topups["data"] + rest["data"]]
    assert ids == ["seed:demo:opening-balance", "topup:alice"]
    alice = admin.ok(admin.get("/admin/ledger", user="alice"))
    assert [row["request_id"] for row in alice["data"]] == ["topup:alice"]
