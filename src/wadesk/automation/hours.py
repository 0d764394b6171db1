"""Business hours: a weekly schedule in the inbox's time zone, minus holidays.

``Hours`` is plain data (validated once); ``is_open`` and ``next_opening`` take aware datetimes
and answer in UTC. Intervals may cross midnight ("22:00"-"02:00" belongs to the day it starts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class HoursInvalid(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Hours:
    timezone: str = "UTC"
    # day -> [(start_minute, end_minute)], end may exceed 1440 (crosses midnight)
    week: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always_open(self) -> bool:
        return not self.week and not self.holidays


def _minutes(value: str) -> int:
    if not isinstance(value, str) or not HHMM.match(value):
        raise HoursInvalid(f"{value!r} is not a time like 09:30")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def parse_hours(timezone: str, schedule: dict[str, list[list[str]]], holidays: list[str]) -> Hours:
    """Validate stored or submitted hours; raise HoursInvalid with a readable reason."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HoursInvalid(f"Unknown time zone {timezone!r}.") from exc
    week: dict[str, tuple[tuple[int, int], ...]] = {}
    for day, intervals in (schedule or {}).items():
        if day not in DAYS:
            raise HoursInvalid(f"Unknown day {day!r}: use {', '.join(DAYS)}.")
        parsed = []
        for interval in intervals or []:
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise HoursInvalid(f'{day}: each interval is ["09:00", "17:00"].')
            start, end = _minutes(interval[0]), _minutes(interval[1])
            if end <= start:
                end += 1440  # crosses midnight
            parsed.append((start, end))
        if parsed:
            week[day] = tuple(sorted(parsed))
    days = set()
    for text in holidays or []:
        try:
            days.add(date.fromisoformat(str(text)))
        except ValueError as exc:
            raise HoursInvalid(f"Holiday {text!r} is not a date like 2026-12-25.") from exc
    return Hours(timezone, week, frozenset(days))


def _open_intervals(hours: Hours, day: date) -> list[tuple[datetime, datetime]]:
    """The opening intervals that start on a local day, as aware local datetimes."""
    if day in hours.holidays:
        return []
    zone = hours.zone
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    result = []
    for start, end in hours.week.get(DAYS[day.weekday()], ()):
        # Wall-clock arithmetic then normalise through UTC (DST days are 23 or 25 hours).
        a = (midnight.replace(tzinfo=None) + timedelta(minutes=start)).replace(tzinfo=zone)
        b = (midnight.replace(tzinfo=None) + timedelta(minutes=end)).replace(tzinfo=zone)
        result.append((a, b))
    return result


def is_open(hours: Hours, at: datetime) -> bool:
    if hours.always_open:
        return True
    if not hours.week:
        # Only holidays configured: open except on them.
        return at.astimezone(hours.zone).date() not in hours.holidays
    local = at.astimezone(hours.zone)
    for day in (local.date() - timedelta(days=1), local.date()):
        for a, b in _open_intervals(hours, day):
            if a.astimezone(UTC) <= at.astimezone(UTC) < b.astimezone(UTC):
                return True
    return False


def next_opening(hours: Hours, at: datetime) -> datetime | None:
    """When the team opens next (``at`` itself if open now), in UTC; None if never."""
    if is_open(hours, at):
        return at.astimezone(UTC)
    if not hours.week:
        local = at.astimezone(hours.zone).date()
        for offset in range(1, 400):
            day = local + timedelta(days=offset)
            if day not in hours.holidays:
                return datetime.combine(day, time(0), tzinfo=hours.zone).astimezone(UTC)
        return None
    local = at.astimezone(hours.zone).date()
    moment = at.astimezone(UTC)
    for offset in range(0, 400):
        for a, _b in _open_intervals(hours, local + timedelta(days=offset)):
            if a.astimezone(UTC) > moment:
                return a.astimezone(UTC)
    return None


def describe(hours: Hours, moment: datetime | None) -> str:
    """A customer-facing phrase for a moment, in the inbox's time zone."""
    if moment is None:
        return "as soon as possible"
    local = moment.astimezone(hours.zone)
    return local.strftime("%A %d %B at %H:%M ") + (local.tzname() or hours.timezone)
