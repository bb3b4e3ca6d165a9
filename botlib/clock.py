"""Clocks: the wall clock for live runs, a settable one for backfills, backtests and tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["SystemClock", "ManualClock", "floor_time"]


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
