"""Free-slot arithmetic, pure (no I/O): weekly wall-clock availability in a user's time zone,
turned into UTC intervals across daylight-saving changes, minus busy intervals, cut into
slots of a fixed length."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple
from zoneinfo import ZoneInfo

UTC = dt.UTC
Interval = tuple[dt.datetime, dt.datetime]


class WeeklyHours(NamedTuple):
    """One user_availability row: 0 = Sunday .. 6 = Saturday, local wall-clock times."""

    day_of_week: int
    start_time: dt.time
    end_time: dt.time


def _day_of_week(day: dt.date) -> int:
    """0 = Sunday, as user_availability counts (isoweekday is 1 = Monday .. 7 = Sunday)."""
    return day.isoweekday() % 7


def _local_instant(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    # fold=0: a wall time that happens twice (autumn) means its first occurrence; one that never
    # happens (the spring gap) is read with the offset in force before the change, i.e. it
    # lands just after the gap. A slot lying wholly in the gap becomes empty and is dropped.
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(UTC)


def availability_intervals(
    weekly: Iterable[WeeklyHours], zone: ZoneInfo, start: dt.datetime, end: dt.datetime
) -> list[Interval]:
    """The weekly hours as UTC intervals within [start, end), sorted and merged (an interval
    ending where the next begins is one interval)."""
    by_day: dict[int, list[WeeklyHours]] = {}
    for hours in weekly:
        by_day.setdefault(hours.day_of_week, []).append(hours)
    # Local dates from a day before to a day after the window: a zone's offset is under a day.
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = end.astimezone(zone).date() + dt.timedelta(days=1)
    intervals = []
    day = first
    while day <= last:
        for hours in by_day.get(_day_of_week(day), ()):
            lo = max(_local_instant(day, hours.start_time, zone), start)
            hi = min(_local_instant(day, hours.end_time, zone), end)
            if hi > lo:
                intervals.append((lo, hi))
        day += dt.timedelta(days=1)
    return _merge(intervals)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def subtract(free: list[Interval], busy: Iterable[Interval]) -> list[Interval]:
    """`free` (sorted, disjoint) without any instant of `busy` (half-open intervals)."""
    result = []
    blocks = _merge(busy)
    for lo, hi in free:
        cursor = lo
        for b_lo, b_hi in blocks:
            if b_hi <= cursor or b_lo >= hi:
                continue
            if b_lo > cursor:
                result.append((cursor, b_lo))
            cursor = max(cursor, b_hi)
            if cursor >= hi:
                break
        if cursor < hi:
            result.append((cursor, hi))
    return result


def cut(free: Iterable[Interval], length: dt.timedelta) -> list[Interval]:
    """Consecutive slots of exactly `length`, from the start of each free interval; a remainder
    shorter than `length` is not a slot."""
    slots = []
    for lo, hi in free:
        while lo + length <= hi:
            slots.append((lo, lo + length))
            lo += length
    return slots


def free_slots(
    weekly: Iterable[WeeklyHours],
    zone: ZoneInfo,
    busy: Iterable[Interval],
    start: dt.datetime,
    end: dt.datetime,
    length: dt.timedelta,
) -> list[Interval]:
    """Slots of `length` in [start, end) inside the weekly hours (read in `zone`) and outside
    every busy interval, as sorted UTC intervals."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    busy = [(lo.astimezone(UTC), hi.astimezone(UTC)) for lo, hi in busy]
    return cut(subtract(availability_intervals(weekly, zone, start, end), busy), length)
