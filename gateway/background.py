"""The process's background loops, supervised: none can end silently.

A loop is meant to run until the process stops. Whenever one raises (whatever
the exception) or returns, that is logged, counted and shown in `/health`, and
the loop is started again after a backoff that doubles from `min_backoff` to
`max_backoff` and goes back to the minimum once a run has lasted a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("gateway.background")

Loop = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class LoopState:
    running: bool = False
    restarts: int = 0  # times it ended and was started again
    last_error: str | None = None
    last_failed_at: float | None = None  # on the supervisor's clock


class Supervisor:
    def __init__(
        self,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min = min_backoff
        self._max = max_backoff
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, LoopState] = {}

    def start(self, name: str, loop: Loop) -> None:
        if name in self._tasks:
            raise ValueError(f"a loop named {name!r} is already running")
        self._states[name] = LoopState()
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._keep(name, loop), name=f"gateway:{name}"
        )

    async def _keep(self, name: str, loop: Loop) -> None:
        state = self._states[name]
        backoff = self._min
        while True:
            began = self._clock()
            state.running = True
            try:
                await loop()
                error = "it returned"
            except asyncio.CancelledError:
                state.running = False
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.error("background loop %s failed; restarting", name, exc_info=exc)
            else:
                log.error("background loop %s returned; restarting", name)
            state.running = False
            state.restarts += 1
            state.last_error = error
            state.last_failed_at = self._clock()
            if self._clock() - began > 2 * self._max:
                backoff = self._min  # it had been running well: not a crash loop
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def states(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(state) for name, state in sorted(self._states.items())}
