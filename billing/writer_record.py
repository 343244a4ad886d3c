"""What the SQLite ledger's writer has done, and whether it is writing rows:
the counts behind its `health()`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from billing.ledger_types import LedgerHealth
from billing.sqlite_writes import ROW_FAULTS, describe
from billing.writer_queues import QueuedRow

log = logging.getLogger("gateway.ledger")


class WriterRecord:
    def __init__(self) -> None:
        self.healthy = True  # no failed batch since the last good one
        self.failed_batches = 0
        self.failed_rows = 0
        self.writer_restarts = 0
        self.checkpoints = 0
        self.last_error: str | None = None

    def restarted(self, error: BaseException) -> None:
        self.writer_restarts += 1
        self.last_error = describe(error)

    def batch(self, batch: Sequence[QueuedRow], failures: Mapping[int, Exception]) -> None:
        """Count a batch's failed rows and judge the ledger's health by it."""
        written = len(batch) - len(failures)
        if failures:
            self.failed_rows += len(failures)
            first = next(iter(failures.values()))
            self.last_error = describe(first)
            log.error(
                "ledger: %d of %d rows not written (first %s: %s)",
                len(failures),
                len(batch),
                batch[min(failures)].entry.request_id,
                self.last_error,
            )
            if not written and any(not isinstance(e, ROW_FAULTS) for e in failures.values()):
                self.failed_batches += 1
                self.healthy = False
        if written:
            self.healthy = True

    def health(
        self, *, writable: bool, queued: int, oldest_seconds: float, wal_bytes: int
    ) -> LedgerHealth:
        return LedgerHealth(
            healthy=writable,
            failed_batches=self.failed_batches,
            failed_rows=self.failed_rows,
            writer_restarts=self.writer_restarts,
            last_error=self.last_error,
            queued=queued,
            oldest_queued_seconds=round(oldest_seconds, 3),
            wal_bytes=wal_bytes,
            checkpoints=self.checkpoints,
        )
