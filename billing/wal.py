"""When the ledger checkpoints its write-ahead log.

SQLite starts its WAL over from the beginning only when a checkpoint has
copied every frame back into the database and nothing was appended since. A
checkpoint that runs while the writer keeps appending never catches up, so
the WAL grows for as long as the load lasts. The ledger's writer therefore
stops and waits for a checkpoint once the WAL has grown by `CHECKPOINT_BYTES`:
the rows that arrive meanwhile go in the next batch, and that batch's commit
restarts the WAL.

The writer's stop is kept short by a first phase that does not stop it: once
the WAL is due, a `PASSIVE` checkpoint copies its frames into the database on
another thread while commits go on; then the writer stops for the `RESTART`,
which has only the frames written meanwhile left to copy (about 2 ms instead
of 7 to 8 for a 4 MB WAL on the benchmark machine).

A RESTART checkpoint leaves the file in place, and the commit that restarts
the WAL cuts it back to `kept_bytes(...)` (`journal_size_limit`), three
quarters of the growth that calls for a checkpoint: commits then write over
blocks the file already has instead of growing it, which costs less (a
quarter less per single-row commit, and checkpoints half as long, measured
on SQLite 3.4x on ext4), and the file's size still says when the WAL has
grown by `CHECKPOINT_BYTES` again.

The checkpoint must also wait for readers of older snapshots (reports) to
finish, but only briefly, since the writer waits with it: `WAIT_MS` at first.
One that could not complete is tried again once the WAL has grown by another
`CHECKPOINT_BYTES`, never back to back, and each retry may wait twice as long
(up to `MAX_WAIT_MS`): a WAL that keeps growing is worth a longer pause.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

CHECKPOINT_BYTES = 4 * 1024 * 1024
WAIT_MS = 50
MAX_WAIT_MS = 1000
# What the README promises: the WAL stays under this under continuous load
# (the tests hold it to this while a reader runs reports).
WAL_BOUND_BYTES = 64 * 1024 * 1024


# The WAL file's size is read after this many rows (a store write counts as
# that many): one single-row commit adds a few pages, far below CHECKPOINT_BYTES.
CHECK_EVERY_ROWS = 32


class WalPolicy:
    """Tracks the WAL file's size between batches and says when to checkpoint."""

    def __init__(self, database: Path, every_bytes: int = CHECKPOINT_BYTES) -> None:
        self.path = database.with_name(database.name + "-wal")
        self._every = every_bytes
        self._due_at = every_bytes
        self._misses = 0  # checkpoints in a row that could not complete
        self._unread_rows = CHECK_EVERY_ROWS  # written since the size was last read
        self.size = 0  # as last seen

    def wrote(self, rows: int = CHECK_EVERY_ROWS) -> None:
        """Rows were committed (or a store write was made: the default)."""
        self._unread_rows += rows

    def due(self) -> bool:
        if self._unread_rows < CHECK_EVERY_ROWS:
            return False
        self._unread_rows = 0
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size < self.size:
            # Restarted and cut back: the WAL holds only what came since.
            self._due_at = min(self._due_at, self._every)
        self.size = size
        return size >= self._due_at

    def wait_ms(self) -> int:
        """How long the next checkpoint may wait for readers."""
        return min(WAIT_MS << min(self._misses, 8), MAX_WAIT_MS)

    def checkpointed(self, complete: bool) -> None:
        """After a checkpoint, complete or not, the next one waits for more growth."""
        self._misses = 0 if complete else self._misses + 1
        self._due_at = self.size + self._every


def kept_bytes(every_bytes: int) -> int:
    """The WAL file's size after a restart (`journal_size_limit`): below the growth
    that calls for a checkpoint, so that the file's size still shows that growth."""
    return every_bytes * 3 // 4


def backfill(db: sqlite3.Connection) -> None:
    """Copy into the database what of the WAL no reader still needs (`PASSIVE`:
    it waits for no lock, and writers go on meanwhile)."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def checkpoint(db: sqlite3.Connection, wait_ms: int) -> bool:
    """A RESTART checkpoint that waits for readers up to `wait_ms`: whether it completed."""
    db.execute(f"PRAGMA busy_timeout = {wait_ms}")
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    return not busy
