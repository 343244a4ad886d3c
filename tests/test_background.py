"""Background loops are supervised: one that fails or returns is restarted, and says so."""

from __future__ import annotations

import asyncio

from gateway.background import Supervisor


async def test_a_failing_loop_is_restarted_with_its_error_recorded():
    runs = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ValueError("The transaction has no transaction ID")
        recovered.set()
        await asyncio.Event().wait()  # then runs for good

    supervisor = Supervisor(min_backoff=0.001, max_backoff=0.002)
    supervisor.start("shipper", flaky)
    await asyncio.wait_for(recovered.wait(), timeout=10)
    state = supervisor.states()["shipper"]
    assert state["restarts"] == 2 and state["running"] is True
    assert state["last_error"] == "ValueError: The transaction has no transaction ID"
    await supervisor.stop()
    assert supervisor.states()["shipper"]["running"] is False


async def test_a_loop_that_returns_is_restarted_too():
    runs = 0
    twice = asyncio.Event()

    async def ends() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            twice.set()

    supervisor = Supervisor(min_backoff=0.001, max_backoff=0.001)
    supervisor.start("quitter", ends)
    await asyncio.wait_for(twice.wait(), timeout=10)
    await supervisor.stop()
    assert supervisor.states()["quitter"]["last_error"] == "it returned"
