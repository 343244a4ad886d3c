"""What this process has lately seen of its store: the outcome of each operation
that went to it (the config refresh, balance reads and resyncs, ledger shipping).

The store counts as reachable from the start, unreachable from any failure, and
reachable again from the next success of any operation. No I/O here: the
components that talk to the store report to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcomes:
    """One operation's record."""

    successes: int = 0
    failures: int = 0
    last_error: str | None = None
    last_success_at: float | None = None  # on the clock of `Reachability`
    last_failure_at: float | None = None


class Reachability:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._operations: dict[str, Outcomes] = {}
        self.reachable = True
        self.last_error: str | None = None
        self.since = clock()  # when `reachable` last changed (or the start)
        # Times the store came back after a failure: listeners subscribe again on it.
        self.recoveries = 0

    def succeeded(self, operation: str) -> None:
        record = self._record(operation)
        record.successes += 1
        record.last_success_at = self._clock()
        if not self.reachable:
            self.reachable = True
            self.since = self._clock()
            self.recoveries += 1

    def failed(self, operation: str, error: str) -> None:
        record = self._record(operation)
        record.failures += 1
        record.last_error = error
        record.last_failure_at = self._clock()
        self.last_error = f"{operation}: {error}"
        if self.reachable:
            self.reachable = False
            self.since = self._clock()

    def failures(self) -> dict[str, int]:
        return {name: record.failures for name, record in sorted(self._operations.items())}

    def seconds_in_state(self) -> float:
        return self._clock() - self.since

    def stats(self) -> dict[str, Any]:
        now = self._clock()

        def ago(moment: float | None) -> float | None:
            return None if moment is None else round(now - moment, 3)

        return {
            "reachable": self.reachable,
            "for_seconds": round(now - self.since, 3),
            "last_error": self.last_error,
            "operations": {
                name: {
                    "successes": record.successes,
                    "failures": record.failures,
                    "last_error": record.last_error,
                    "last_success_seconds_ago": ago(record.last_success_at),
                    "last_failure_seconds_ago": ago(record.last_failure_at),
                }
                for name, record in sorted(self._operations.items())
            },
        }

    def _record(self, operation: str) -> Outcomes:
        record = self._operations.get(operation)
        if record is None:
            record = self._operations[operation] = Outcomes()
        return record
