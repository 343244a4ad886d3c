"""Budget windows: calendar periods in a configured time zone, pure.

A window is named by its start, an ISO 8601 instant in UTC in the form the
ledger's `created_at` has, so that "spent in this window" is the sum of the
charges whose `created_at` is at or after it (a charge is dated when its hold
was taken, so a hold and its charge fall in the same window). A lifetime
window starts at "" (before every row) and never resets. No job resets a
window: the next one simply begins when the clock passes its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

WINDOWS = ("daily", "weekly", "monthly", "lifetime")


@dataclass(frozen=True, slots=True)
class Window:
    kind: str
    since: str  # the start, as a ledger `created_at` ("" for lifetime)
    resets_at: str | None  # the next window's start (None: never)


def window(kind: str, now: datetime, zone: ZoneInfo) -> Window:
    """The `kind` window that holds the instant `now` (aware) in `zone`. Weeks
    begin on Monday; a day that a clock change makes 23 or 25 hours long is
    one window."""
    if kind == "lifetime":
        return Window(kind, "", None)
    local = now.astimezone(zone)
    day = local.date()
    if kind == "daily":
        start, end = day, day + timedelta(days=1)
    elif kind == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif kind == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown window {kind!r}")
    return Window(kind, _midnight(start, zone), _midnight(end, zone))


def _midnight(day: object, zone: ZoneInfo) -> str:
    local = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=zone)
    return local.astimezone(UTC).isoformat(timespec="microseconds")
