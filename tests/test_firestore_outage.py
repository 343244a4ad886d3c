"""Two gateway instances on one Firestore emulator ride out a store outage.

The gateways reach the emulator through a TCP proxy that the test controls.
The outage cuts the proxy (connections refused and reset, as when the server
dies) while requests are in flight and rows wait in the outboxes; then the
emulator's data is exported, its whole process group is killed, and it is
started again from the export on the same port. The emulator cannot export
on a kill, and an export taken before the gateways are cut off would lose
what they ship in between: cutting the network first makes the export hold
every commit the gateways saw succeed.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.firestore_ledger import FirestoreLedger
from billing.ledger_types import LedgerEntry, LedgerError
from config_store.reachability import Reachability
from gateway.background import Supervisor
from tests.admin_client import Admin
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tcp_proxy import TcpProxy
from tests.firestore_emulator import Emulator, documents, firestore_env, gcloud, new_project
from tests.harness import GatewayServer

MINI = "gpt-4o-mini-2024-07-18"
START = 100 * 10**9
FLUSH, SYNC, STALE, TIMEOUT = 0.2, 0.5, 2.0, 1.0
# An instance must refuse paid requests once its view is older than STALE; it
# notices at its next request, and a resync in progress may hold the lock for
# TIMEOUT. Generous on top, for a loaded machine: this only bounds a wait.
REFUSAL_BOUND = STALE + SYNC + TIMEOUT + 10.0


def outage_env(host: str, project: str) -> dict[str, str]:
    return {
        **firestore_env(host, project),  # flush 0.2 s, resync 0.5 s
        "GATEWAY_FIRESTORE_STALE_SECONDS": str(STALE),
        "GATEWAY_STORE_TIMEOUT_SECONDS": str(TIMEOUT),
    }


def charge(i: int) -> LedgerEntry:
    return LedgerEntry(
        request_id=f"r{i}",
        user_id="u1",
        kind="charge",
        amount_nano=-1000 * (i + 1),
        created_at=datetime.now(UTC).isoformat(),
    )


async def until(check: Callable[[], bool], what: str, within: float = 30) -> None:
    """Wait (on the loop) until `check` holds; `within` only bounds the wait."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        await asyncio.sleep(0.02)


async def test_the_shipper_outlives_an_outage_and_ships_every_row_once(
    firestore_host: str, tmp_path: Path
):
    project = new_project()
    reach = Reachability()
    with TcpProxy(firestore_host) as proxy:
        ledger = FirestoreLedger(
            project,
            proxy.address,
            tmp_path / "outbox.db",
            flush_seconds=0.05,
            timeout=0.5,
            max_backoff=0.1,
            reach=reach,
        )
        await ledger.start()
        loops = Supervisor(min_backoff=0.05)
        loops.start("ledger_shipping", ledger.ship_forever)
        try:
            for i in range(5):
                await ledger.submit(charge(i))
            await until(lambda: ledger.pending() == 0, "shipped")
            proxy.cut()
            for i in range(5, 10):
                await ledger.submit(charge(i))
            await until(lambda: ledger.ship_failures >= 2, "failures counted")
            assert reach.reachable is False and reach.failures()["shipping"] >= 2
            assert ledger.last_error is not None and ledger.pending() == 5
            assert ledger.oldest_unshipped_seconds() > 0
            with pytest.raises(LedgerError):
                await ledger.balance("u1")
            proxy.restore()
            await until(lambda: ledger.pending() == 0, "shipped after the outage")
            assert reach.reachable is True and reach.recoveries == 1
            assert await ledger.balance("u1") == -55_000
            # The loop never ended: every failure was the loop's own, retried.
            state = loops.states()["ledger_shipping"]
            assert (state["running"], state["restarts"]) == (True, 0)
        finally:
            await loops.stop()
            await ledger.close()
    assert sorted(documents(firestore_host, project, "ledger")) == sorted(
        f"r{i}" for i in range(10)
    )
    assert documents(firestore_host, project, "balances")["u1"]["balance_nano"] == -55_000


async def test_a_hung_store_bounds_reads_and_shutdown(
    firestore_host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    project = new_project()
    outbox = tmp_path / "outbox.db"
    with TcpProxy(firestore_host) as proxy:
        ledger = FirestoreLedger(project, proxy.address, outbox, flush_seconds=60, timeout=TIMEOUT)
        await ledger.start()
        await ledger.submit(charge(0))
        await ledger.drained()
        proxy.hang()  # connections stay open, and nothing comes back
        for i in range(1, 4):
            await ledger.submit(charge(i))
        began = time.monotonic()
        with pytest.raises(LedgerError):
            await asyncio.wait_for(ledger.balance("u1"), 20)  # 20 s only bounds the wait
        read = time.monotonic() - began
        began = time.monotonic()
        await asyncio.wait_for(ledger.close(), 20)  # returns though nothing can be shipped
        closed = time.monotonic() - began
    with capsys.disabled():
        print(f"\nhung store: a balance read failed after {read:.2f} s, close took {closed:.2f} s")
    with sqlite3.connect(outbox) as db:
        assert db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 3  # kept for later
    later = FirestoreLedger(project, firestore_host, outbox, flush_seconds=60)
    await later.start()
    try:
        await later.drained()
        assert later.pending() == 0 and await later.balance("u1") == -10_000
    finally:
        await later.close()
    assert len(documents(firestore_host, project, "ledger")) == 4


def test_a_hung_store_answers_paid_requests_and_shutdown_in_bounded_time(
    make_gateway: Callable[..., GatewayServer],
    firestore_host: str,
    fake_openai: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
):
    project = new_project()
    ask = {"model": MINI, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    def chat(gw: GatewayServer) -> httpx.Response:
        return httpx.post(
            f"{gw.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {gw.demo_key}"},
            json=ask,
            timeout=20,  # bounds the wait; the gateway answered after 30 s before
        )

    with TcpProxy(firestore_host) as proxy:
        # A stale bound far away: what answers here is the balance read's own limit.
        env = {**outage_env(proxy.address, project), "GATEWAY_FIRESTORE_STALE_SECONDS": "60"}
        gw = make_gateway(env=env)
        wait_for(lambda: health(gw).status_code == 200, 10, "healthy")
        proxy.hang()  # connections stay open, and nothing comes back
        began = time.monotonic()
        refused = chat(gw)  # the demo user's balance was never read: this request must
        answered = time.monotonic() - began
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "store_unavailable"
        wait_for(lambda: health(gw).status_code == 503, REFUSAL_BOUND, "health says so")
        proxy.restore()
        wait_for(lambda: health(gw).status_code == 200, 30, "healthy again")
        assert chat(gw).status_code == 200

        proxy.hang()
        # Served from the balance now held; its row can only wait in the outbox.
        waiting = chat(gw)
        assert waiting.status_code == 200, waiting.text
        began = time.monotonic()
        gw.stop()  # waits up to 15 s for the server's thread
        stopped = time.monotonic() - began
        assert gw._thread is not None and not gw._thread.is_alive()
    with capsys.disabled():
        print(
            f"\nhung store: a paid request was refused after {answered:.2f} s; "
            f"the gateway stopped in {stopped:.2f} s"
        )
    with sqlite3.connect(gw.data_dir / "ledger-outbox.db") as outbox:
        kept = [row[0] for row in outbox.execute("SELECT request_id FROM ledger")]
    assert waiting.headers["x-request-id"] in kept  # shipped at the next start


@dataclass(frozen=True, slots=True)
class Outcome:
    instance: str  # "a" or "b"
    user: str
    status: int
    code: str | None
    request_id: str | None
    done_at: float  # time.monotonic() when the answer was in


class Traffic:
    """Requests sent to both instances from threads, until stopped; every answer kept."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run(self, instance: str, gw: GatewayServer, user: str, key: str, pause: float) -> None:
        def loop() -> None:
            n = 0
            with httpx.Client(timeout=60) as http:
                while not self._stop.is_set():
                    n += 1
                    status = self._record(instance, user, http, gw, key, f"{user} {instance} {n}")
                    # A refusal comes at once: pause, so as not to flood the machine.
                    self._stop.wait(pause if status == 200 else max(pause, 0.25))

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _record(
        self, instance: str, user: str, http: httpx.Client, gw: GatewayServer, key: str, text: str
    ) -> int:
        try:
            response = http.post(
                f"{gw.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": MINI, "messages": [{"role": "user", "content": text}],
                      "max_tokens": 10},
            )  # fmt: skip
        except httpx.HTTPError as exc:  # kept as an answer of its own, which the test refuses
            outcome = Outcome(instance, user, 0, repr(exc), None, time.monotonic())
        else:
            code = None
            if response.status_code != 200:
                code = response.json()["error"]["code"]
            outcome = Outcome(
                instance,
                user,
                response.status_code,
                code,
                response.headers.get("x-request-id") if response.status_code == 200 else None,
                time.monotonic(),
            )
        with self._lock:
            self.outcomes.append(outcome)
        return outcome.status

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def served(self, user: str | None = None) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.status == 200 and user in (None, o.user)]

    def first_refusal(self, instance: str, after: float) -> float | None:
        with self._lock:
            return next(
                (
                    o.done_at
                    for o in self.outcomes
                    if o.instance == instance
                    and o.done_at > after
                    and (o.status, o.code) == (503, "store_unavailable")
                ),
                None,
            )


@pytest.fixture
def emulator_of_its_own() -> Iterator[Emulator]:
    if gcloud() is None:
        pytest.skip("the Google Cloud CLI (gcloud) is not installed: no Firestore emulator")
    server = Emulator().start()
    try:
        yield server
    finally:
        server.kill()


def wait_for(check: Callable[[], Any], within: float, what: str) -> Any:
    """Poll until `check` gives something true; `within` only bounds the wait."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        time.sleep(0.05)


def health(gw: GatewayServer) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/health", timeout=30)


def metric(gw: GatewayServer, name: str) -> float:
    text = httpx.get(f"{gw.base_url}/metrics", timeout=30).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def metric_total(gw: GatewayServer, name: str) -> float:
    """The sum of a metric over its labels."""
    text = httpx.get(f"{gw.base_url}/metrics", timeout=30).text
    return sum(float(v) for v in re.findall(rf"^{name}{{.*}} (\S+)$", text, re.MULTILINE))


def outbox_rows(gw: GatewayServer) -> int:
    with sqlite3.connect(gw.data_dir / "ledger-outbox.db") as outbox:
        return int(outbox.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])


def most_in_window(events: list[tuple[float, int]], window: float) -> int:
    """The largest sum of amounts whose times fall within one window of that length."""
    events = sorted(events)
    best = total = start = 0
    for end in range(len(events)):
        total += events[end][1]
        while events[end][0] - events[start][0] > window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def ride_out_an_outage(
    make_gateway: Callable[..., GatewayServer],
    fake_openai: FakeOpenAI,
    server: Emulator,
    tmp_path: Path,
    outage_seconds: float,
) -> dict[str, Any]:
    project = new_project()
    proxy = TcpProxy(server.host).start()
    times: dict[str, Any] = {}
    began = time.monotonic()
    started: list[GatewayServer] = []
    traffic = Traffic()
    try:
        a = make_gateway(env=outage_env(proxy.address, project))
        b = make_gateway(env=outage_env(proxy.address, project), do_seed=False)
        started += [a, b]
        b.demo_key = a.demo_key
        admin_a, admin_b = Admin(a), Admin(b)
        # A user created through the admin API, with a small balance (some 25
        # requests' worth), that both instances spend until it runs out.
        admin_a.ok(admin_a.post("/admin/users", {"id": "poor", "name": "Poor"}), 201)
        poor_key = admin_a.ok(admin_a.post("/admin/users/poor/keys", {"name": "k"}), 201)["key"]
        opening = 100_000
        topup = {"amount_usd": f"{opening / 10**9:.9f}", "reason": "test"}
        admin_a.ok(admin_a.post("/admin/users/poor/topup", topup), 201)
        wait_for(lambda: "poor" in b.services().cache.snapshot.users, 10, "B knows the user")
        for gw in (a, b):
            wait_for(lambda gw=gw: health(gw).status_code == 200, 10, "healthy at start")

        times["setup_seconds"] = round(time.monotonic() - began, 2)
        fake_openai.delay = 0.3  # requests are in flight when the store goes
        for name, gw in (("a", a), ("b", b)):
            for _ in range(2):
                traffic.run(name, gw, "demo", a.demo_key, 0.0)
            traffic.run(name, gw, "poor", poor_key, 0.2)
        time.sleep(1.0)
        assert traffic.served("demo"), "nothing was served before the outage"

        # The outage.
        cut_at = time.monotonic()
        proxy.cut()
        in_outbox = {name: outbox_rows(gw) for name, gw in (("a", a), ("b", b))}
        for name, gw in (("a", a), ("b", b)):
            wait_for(lambda gw=gw: health(gw).status_code == 503, REFUSAL_BOUND, f"{name} 503")
            times[f"{name}_health_503_after"] = round(time.monotonic() - cut_at, 2)
            refused = wait_for(
                lambda name=name: traffic.first_refusal(name, cut_at), REFUSAL_BOUND, f"{name}"
            )
            times[f"{name}_refuses_after"] = round(refused - cut_at, 2)

            def down(gw: GatewayServer = gw) -> bool:
                body = health(gw).json()
                store, listening = body["store"]["reachable"], body["listening"]
                return not store and not listening and bool(body["balances"]["refusal"])

            wait_for(down, REFUSAL_BOUND, f"{name}: store, listeners and view shown down")
            assert metric(gw, "gateway_store_up") == 0
            assert metric(gw, "gateway_billing_admitting") == 0
            assert metric(gw, "gateway_config_listening") == 0
            assert metric_total(gw, "gateway_store_failures_total") >= 1
        # Nobody is admitted any more: what each instance charges now is only
        # what was in flight.
        killed_at = time.monotonic()
        export = server.export(project, tmp_path / "export")
        server.kill()
        remaining = outage_seconds - (time.monotonic() - cut_at)
        if remaining > 0:
            time.sleep(remaining)
        refused_during = {
            name: [o for o in traffic.outcomes if o.instance == name and o.done_at > cut_at]
            for name in ("a", "b")
        }
        server.start(import_data=export)
        times["emulator_down_seconds"] = round(time.monotonic() - killed_at, 2)
        shipped_before = {name: gw.services().ledger.shipped for name, gw in (("a", a), ("b", b))}
        waiting = {name: outbox_rows(gw) for name, gw in (("a", a), ("b", b))}
        restored_at = time.monotonic()
        proxy.restore()
        times["outage_seconds"] = round(restored_at - cut_at, 2)

        # Recovery.
        for name, gw in (("a", a), ("b", b)):
            wait_for(lambda gw=gw: health(gw).status_code == 200, 30, f"{name} healthy again")
            times[f"{name}_health_200_after"] = round(time.monotonic() - restored_at, 2)
            wait_for(lambda gw=gw: health(gw).json()["listening"], 30, f"{name} listening")
            times[f"{name}_listening_after"] = round(time.monotonic() - restored_at, 2)
        recovered_at = time.monotonic()
        wait_for(
            lambda: all(
                any(o.done_at > recovered_at for o in traffic.served() if o.instance == name)
                for name in ("a", "b")
            ),
            30,
            "served again after recovery",
        )
        wait_for(
            lambda: {o.instance for o in traffic.outcomes if o.status == 402} == {"a", "b"},
            60,
            "the poor user ran out on both instances",
        )
        traffic.stop()
        fake_openai.delay = 0
        checks_from = time.monotonic()

        # Every answer was a 200, a 402 once the poor user ran out, or a 503
        # store_unavailable: never anything else.
        kinds = {(o.status, o.code) for o in traffic.outcomes}
        assert kinds <= {(200, None), (402, "insufficient_quota"), (503, "store_unavailable")}, (
            kinds
        )
        assert any(o.status == 200 for o in refused_during["a"] + refused_during["b"])

        # The books: every outbox drained, every served request's row exactly once.
        for gw in (a, b):  # each drains its outbox (reconcile ships it first)
            Admin(gw).ok(Admin(gw).get("/admin/reconcile"))
        for gw in (a, b):  # no instance ships any more: the same books seen from both
            report = Admin(gw).ok(Admin(gw).get("/admin/reconcile"))
            assert report["clean"] is True, report
            assert outbox_rows(gw) == 0
        ledger = documents(server.host, project, "ledger")
        charges = {k: v for k, v in ledger.items() if v["kind"] == "charge"}
        served = traffic.served()
        assert sorted(charges) == sorted(o.request_id for o in served)  # none missing, none extra
        balances = documents(server.host, project, "balances")
        for user, opened in (("demo", START), ("poor", opening)):
            spent = sum(-row["amount_nano"] for row in charges.values() if row["user_id"] == user)
            assert balances[user]["balance_nano"] == opened - spent  # every increment once
            for gw in (a, b):
                assert Admin(gw).ok(Admin(gw).get(f"/admin/users/{user}"))["balance_nano"] == (
                    opened - spent
                )

        # The overspend bound (README): an instance misses at most what the other
        # charged within its shipping delay plus its view's age, each at most the
        # stale bound while it admits; answers come after their rows commit, so
        # one more second of slack.
        window = 2 * STALE + 1.0
        events = {
            name: [
                (o.done_at, -charges[o.request_id]["amount_nano"])
                for o in served
                if o.user == "poor" and o.instance == name
            ]
            for name in ("a", "b")
        }
        poor_spent = sum(amount for name in events for _, amount in events[name])
        bound = max(most_in_window(events["b"], window), most_in_window(events["a"], window))
        assert poor_spent <= opening + bound

        # The listeners are back: a change made through A reaches B's snapshot.
        admin_a.ok(admin_a.patch("/admin/models/mock-1", {"note": "after the outage"}))
        wait_for(
            lambda: admin_b.get("/admin/models/mock-1").json()["note"] == "after the outage",
            10,
            "B heard the change",
        )
        times["checks_seconds"] = round(time.monotonic() - checks_from, 2)
        shipped_after = {
            name: gw.services().ledger.shipped - shipped_before[name]
            for name, gw in (("a", a), ("b", b))
        }
        return {
            **times,
            "outbox_rows_at_cut": in_outbox,
            "outbox_rows_at_restore": waiting,
            "rows_shipped_after_recovery": shipped_after,
            "served": len(served),
            "refused_503": sum(1 for o in traffic.outcomes if o.status == 503),
            "poor_opening_nano": opening,
            "poor_spent_nano": poor_spent,
            "poor_overspend_nano": max(poor_spent - opening, 0),
            "bound_nano": bound,
        }
    finally:
        traffic.stop()
        for gw in started:  # while their store is still there to say goodbye to
            gw.stop()
        proxy.stop()


def test_two_instances_ride_out_a_store_outage(
    make_gateway: Callable[..., GatewayServer],
    fake_openai: FakeOpenAI,
    emulator_of_its_own: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    report = ride_out_an_outage(make_gateway, fake_openai, emulator_of_its_own, tmp_path, 0)
    with capsys.disabled():
        print(f"\noutage: {report}")
    assert all(rows >= 0 for rows in report["rows_shipped_after_recovery"].values())
    assert sum(report["outbox_rows_at_restore"].values()) >= 1  # rows waited out the outage
    assert sum(report["rows_shipped_after_recovery"].values()) >= sum(
        report["outbox_rows_at_restore"].values()
    )


@pytest.mark.soak
def test_two_instances_ride_out_an_outage_of_minutes(
    make_gateway: Callable[..., GatewayServer],
    fake_openai: FakeOpenAI,
    emulator_of_its_own: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    report = ride_out_an_outage(make_gateway, fake_openai, emulator_of_its_own, tmp_path, 150)
    with capsys.disabled():
        print(f"\noutage of minutes: {report}")
    assert report["a_health_200_after"] < 30 and report["b_health_200_after"] < 30


def test_the_stale_bound_must_exceed_the_intervals():
    from gateway.settings import Settings, SettingsError

    settings = Settings.from_env({})
    assert (settings.store_timeout_seconds, settings.firestore_stale_seconds) == (5.0, 10.0)
    with pytest.raises(SettingsError, match="GATEWAY_FIRESTORE_STALE_SECONDS"):
        Settings.from_env({"GATEWAY_FIRESTORE_STALE_SECONDS": "2"})  # resync every 2 s
    with pytest.raises(SettingsError, match="GATEWAY_FIRESTORE_STALE_SECONDS"):
        Settings.from_env({"GATEWAY_LEDGER_FLUSH_SECONDS": "12"})


async def test_a_client_of_firestore_itself_gets_the_reconnect_options():
    """Not the emulator's: the channel to Firestore is made through the transport
    class, which the client is given with the reconnect options added (checked
    offline: the channel connects on its first call only)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.firestore_v1 import AsyncClient
    from google.cloud.firestore_v1.services.firestore.transports.grpc_asyncio import (
        FirestoreGrpcAsyncIOTransport,
    )

    from config_store.firestore_client import _reconnect_promptly

    made = AsyncClient(project="p", credentials=AnonymousCredentials())
    _reconnect_promptly(made, asynchronous=True)
    transport = made._firestore_api.transport
    assert type(transport) is not FirestoreGrpcAsyncIOTransport
    assert isinstance(transport, FirestoreGrpcAsyncIOTransport)
    assert "create_channel" in vars(type(transport))
    made.close()
