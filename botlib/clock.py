"""Clocks (the wall clock for live runs, a settable one for backfills, backtests and tests)
and the time vocabulary every layer shares: bar boundaries, UTC days, ISO-8601 text."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

__all__ = ["SystemClock", "ManualClock", "floor_time", "day_start", "iso", "parse_time"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; must be given an aware UTC time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def floor_time(when: datetime, minutes: int) -> datetime:
    """Floor `when` to a multiple of `minutes` since the epoch (bar boundaries)."""
    step = minutes * 60
    seconds = int(when.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, UTC)


def day_start(now: datetime) -> datetime:
    """Return 00:00 UTC of the day `now` falls on (daily limits and budgets count from it)."""
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def iso(when: datetime | None) -> str | None:
    """Store times as ISO-8601 UTC strings, so they sort and compare as text."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("naive datetime: botlib stores timezone-aware UTC times only")
    return when.astimezone(UTC).isoformat()


def parse_time(text: str | None) -> datetime | None:
    """Read a stored ISO-8601 time back as an aware UTC datetime (None stays None)."""
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)
