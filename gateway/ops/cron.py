"""Five-field cron expressions ("minute hour day-of-month month day-of-week"),
and the next time one fires. Fields take `*`, numbers, ranges `a-b`, lists
`a,b` and steps `*/n` or `a-b/n`; day of week 0-6 with 0 = Sunday (7 too).
As in cron, when both day fields are restricted a day matching either fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class CronError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = expression.split()
        if len(fields) != 5:
            raise CronError(f"a cron expression has 5 fields, got {expression!r}")
        sets = [
            _field(text, low, high, name)
            for text, (low, high), name in zip(fields, _BOUNDS, _NAMES, strict=True)
        ]
        return cls(
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=frozenset(d % 7 for d in sets[4]),
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )

    def matches(self, moment: datetime) -> bool:
        return (
            moment.month in self.months
            and self._day_ok(moment)
            and moment.hour in self.hours
            and moment.minute in self.minutes
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first whole minute after `moment` that the expression matches."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(200_000):  # enough steps for any expression that ever fires
            if candidate.month not in self.months:
                year, month = divmod(candidate.month, 12)
                candidate = candidate.replace(
                    year=candidate.year + year, month=month + 1, day=1, hour=0, minute=0
                )
            elif not self._day_ok(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise CronError("the expression never fires")

    def _day_ok(self, moment: datetime) -> bool:
        day = moment.day in self.days
        weekday = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def _field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _number(step_text, name) if step_text else 1
        if step < 1:
            raise CronError(f"the {name} step must be at least 1")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, name), _number(last, name)
        else:
            start = _number(body, name)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise CronError(f"the {name} field {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise CronError(f"the {name} field has {text!r}, not a number")
    return int(text)
