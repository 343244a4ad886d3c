"""The ledger's WAL checkpoints, in two phases (see `billing.wal` for why).

Once the WAL is due, a `PASSIVE` checkpoint copies its frames into the
database on a thread of its own while the writer goes on committing. Once that
is done, the writer stops for the `RESTART` (on the ledger's worker thread),
which has only the frames written meanwhile left to copy, and then begins the
WAL again. The writer is woken when the first phase ends, so that an idle
ledger restarts its WAL without waiting for a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from billing.sqlite_writes import WriterConnection, describe
from billing.wal import WalPolicy

log = logging.getLogger("gateway.ledger")


class Checkpoints:
    def __init__(
        self,
        conn: WriterConnection,
        wal: WalPolicy,
        worker: ThreadPoolExecutor,
        wake: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._wal = wal
        self._worker = worker  # where the writer's stop (RESTART) runs
        self._wake = wake
        self._copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-backfill")
        self._copying: asyncio.Future[None] | None = None

    @property
    def copied(self) -> bool:
        """The first phase is over: the writer's stop is due."""
        return self._copying is not None and self._copying.done()

    async def step(self) -> float | None:
        """Between two batches: start the first phase if the WAL is due, or make
        the writer's stop if the first phase is over. Returns how long the
        writer stopped, for a checkpoint made; None otherwise."""
        copying = self._copying
        if copying is None:
            if self._wal.due():
                self._copying = asyncio.get_running_loop().run_in_executor(
                    self._copier, self._conn.backfill
                )
                self._copying.add_done_callback(lambda _: self._wake())
            return None
        if not copying.done():
            return None
        self._copying = None
        failed = copying.exception()
        if failed is not None:  # the RESTART copies everything then
            log.warning("ledger backfill failed: %s", describe(failed))
        began = time.perf_counter()
        complete = False
        try:
            complete = await asyncio.get_running_loop().run_in_executor(
                self._worker, self._conn.checkpoint, self._wal.wait_ms()
            )
        except Exception as exc:
            log.warning("ledger checkpoint failed: %s", describe(exc))
            return None
        finally:
            self._wal.checkpointed(complete)
        return time.perf_counter() - began

    async def close(self) -> None:
        """Let a first phase end (it runs on the checkpoint connection, which
        closes next) and stop its thread."""
        if self._copying is not None:
            with contextlib.suppress(Exception):
                await self._copying
            self._copying = None
        self._copier.shutdown(wait=True)
