"""What waits for the SQLite ledger's writer: ledger rows, written in batches,
and store writes, each run in a transaction of its own between two batches."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from billing.ledger_types import LedgerEntry, LedgerError
from billing.sqlite_writes import describe


@dataclass(slots=True)
class QueuedRow:
    entry: LedgerEntry
    future: asyncio.Future[None]
    since: float = 0.0


class RowQueue:
    """Rows submitted and not yet answered: those waiting, and the batch being written."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.waiting: list[QueuedRow] = []
        self.writing: list[QueuedRow] = []

    def __len__(self) -> int:
        return len(self.writing) + len(self.waiting)

    def add(self, entry: LedgerEntry, future: asyncio.Future[None]) -> None:
        self.waiting.append(QueuedRow(entry, future, self._clock()))

    def take(self, most: int) -> list[QueuedRow]:
        """The next batch, which is being written until `take_writing()`."""
        batch = self.waiting[:most]
        del self.waiting[: len(batch)]
        self.writing = batch
        return batch

    def take_writing(self) -> list[QueuedRow]:
        batch, self.writing = self.writing, []
        return batch

    def oldest_seconds(self) -> float:
        first = self.writing[:1] or self.waiting[:1]
        return self._clock() - first[0].since if first else 0.0

    def futures(self) -> list[asyncio.Future[None]]:
        return [item.future for item in (*self.writing, *self.waiting)]

    def fail_all(self, reason: str) -> None:
        fail_rows(self.writing + self.waiting, reason)
        self.waiting, self.writing = [], []


def fail_rows(items: Iterable[QueuedRow], reason: str) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(LedgerError(reason))


@dataclass(slots=True)
class StoreJob:
    """A store write: a function to run in a transaction of its own."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


class StoreJobs:
    """Store writes waiting for the writer, and the one it is running."""

    def __init__(self) -> None:
        self.queued: list[StoreJob] = []
        self.running: StoreJob | None = None

    def add(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]) -> None:
        self.queued.append(StoreJob(fn, future))

    def futures(self) -> list[asyncio.Future[Any]]:
        return [job.future for job in self._all()]

    async def run(
        self, execute: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    ) -> None:
        """The writes queued so far, one after another (those queued meanwhile wait
        for the next round). What a write raises is its caller's."""
        for _ in range(len(self.queued)):
            job = self.queued.pop(0)
            if job.future.done():  # its caller gave up before it began
                continue
            self.running = job
            try:
                result = await execute(job.fn)
            except Exception as exc:
                fail_jobs([job], exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                self.running = None

    def fail_running(self, error: BaseException) -> None:
        if self.running is not None:
            fail_jobs([self.running], error)
            self.running = None

    def fail_all(self, error: BaseException) -> None:
        fail_jobs(self._all(), error)
        self.queued, self.running = [], None

    def _all(self) -> list[StoreJob]:
        return ([self.running] if self.running else []) + self.queued


def fail_jobs(jobs: Iterable[StoreJob], error: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)


def answer_rows(batch: Sequence[QueuedRow], failures: Mapping[int, Exception]) -> None:
    """Resolve a written batch's futures: each row committed, or failed with its error."""
    for index, item in enumerate(batch):
        if item.future.done():
            continue
        error = failures.get(index)
        if error is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(LedgerError(f"ledger write failed: {describe(error)}"))
