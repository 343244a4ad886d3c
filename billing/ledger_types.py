"""What a ledger holds and promises, whichever backend writes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class LedgerError(Exception):
    """A ledger row could not be written or read."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    request_id: str
    user_id: str
    kind: str  # "charge" | "topup" | "adjust"
    amount_nano: int  # signed: charges are negative
    created_at: str
    model_id: str = ""
    provider: str = ""
    key_prefix: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    prices: str = "{}"  # JSON copy of the prices used
    reason: str = ""
    key_id: str = ""  # the API key's id (the start of its hash), for spend caps and usage
    # What the provider's usage priced beyond the hold, not charged (capture <= authorisation).
    uncollected_nano: int = 0
    # Where the billed tokens come from: "provider", "counted" (no usage arrived),
    # "partial" (a stream that ended early: the provider's figures so far plus our
    # count of what was relayed) or "anomaly" (usage not plausible: our count).
    usage_source: str = ""
    usage_raw: str = ""  # the provider's usage as it came, when it was not plausible
    team_id: str = ""  # the user's team when the request was made
    paid_by: str = ""  # "team": the team's wallet moved, not the user's balance
    end_user: str = ""  # the client's own end user (OpenAI's `user` field), as it named them

    @property
    def account(self) -> str:
        """The balance this row moves: the user's, or their team's wallet."""
        return f"team:{self.team_id}" if self.paid_by == "team" else self.user_id

    def row(self) -> tuple[str | int, ...]:
        return (
            self.request_id,
            self.user_id,
            self.kind,
            self.amount_nano,
            self.created_at,
            self.model_id,
            self.provider,
            self.key_prefix,
            self.prompt_tokens,
            self.completion_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.prices,
            self.reason,
            self.key_id,
            self.uncollected_nano,
            self.usage_source,
            self.usage_raw,
            self.team_id,
            self.paid_by,
            self.end_user,
        )


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """What the writer is doing, for /health and /metrics."""

    healthy: bool  # rows are being written: no failed batch since the last good one, none stuck
    failed_batches: int = 0  # batches of which no row could be written
    failed_rows: int = 0  # every row that failed, alone or with its batch
    writer_restarts: int = 0
    last_error: str | None = None
    queued: int = 0  # rows submitted and not yet committed or failed
    oldest_queued_seconds: float = 0.0
    wal_bytes: int = 0
    checkpoints: int = 0


class Ledger(Protocol):
    batches: int
    rows: int
    on_batch: Callable[[int, float], None] | None  # rows and seconds of each commit
    on_checkpoint: Callable[[float], None] | None  # seconds the writer waited for one

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def submit(self, entry: LedgerEntry) -> asyncio.Future[None]: ...

    async def drained(self) -> None: ...

    async def committed(self) -> None:
        """Every row submitted so far is written where this instance's reads see
        it (for Firestore: its outbox; `drained` also ships it)."""
        ...

    async def balance(self, user_id: str) -> int | None: ...

    async def spent(self, scope: str, subject: str, since: str) -> int:
        """What was charged to a budget's subject (`billing.budgets.Subject`)
        from `since` (a `created_at`; "" for ever) on."""
        ...

    async def has_entry(self, request_id: str) -> bool: ...

    @property
    def writable(self) -> bool: ...

    def health(self) -> LedgerHealth: ...
