"""Business hours with time zones, DST, overnight shifts and holidays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wadesk.automation.hours import HoursInvalid, is_open, next_opening, parse_hours

WEEKDAYS = {d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_open_and_next_opening_in_the_inbox_time_zone():
    hours = parse_hours("America/Sao_Paulo", WEEKDAYS, [])
    # Monday 2026-11-23 12:00 UTC is 09:00 in São Paulo (UTC-3): just opened.
    assert is_open(hours, at("2026-11-23T12:00:00+00:00"))
    assert not is_open(hours, at("2026-11-23T11:59:00+00:00"))
    assert not is_open(hours, at("2026-11-23T20:30:00+00:00"))  # 17:30 local: closed
    # Friday evening -> Monday 09:00 local.
    assert next_opening(hours, at("2026-11-27T22:00:00+00:00")) == at("2026-11-30T12:00:00+00:00")


def test_holidays_are_closed_and_skipped():
    hours = parse_hours("Europe/Berlin", WEEKDAYS, ["2026-12-24", "2026-12-25"])
    assert not is_open(hours, at("2026-12-24T10:00:00+01:00"))
    # Wednesday evening before: next opening is Monday the 28th (24th, 25th holidays; weekend).
    assert next_opening(hours, at("2026-12-23T18:00:00+01:00")) == at("2026-12-28T09:00:00+01:00")


def test_dst_change_keeps_wall_clock_opening():
    hours = parse_hours("Europe/Berlin", WEEKDAYS, [])
    # Last Sunday of March 2027 is the 28th: Monday the 29th opens at 09:00 CEST (07:00 UTC).
    assert next_opening(hours, at("2027-03-27T12:00:00+00:00")) == at("2027-03-29T07:00:00+00:00")
    # Before the change, 09:00 CET is 08:00 UTC.
    assert next_opening(hours, at("2027-03-21T12:00:00+00:00")) == at("2027-03-22T08:00:00+00:00")


def test_overnight_shift_crosses_midnight():
    hours = parse_hours("Asia/Tokyo", {"fri": [["22:00", "02:00"]]}, [])
    assert is_open(hours, at("2026-11-28T01:30:00+09:00"))  # Saturday 01:30, Friday's shift
    assert not is_open(hours, at("2026-11-28T02:00:00+09:00"))


def test_no_schedule_means_always_open():
    hours = parse_hours("UTC", {}, [])
    assert is_open(hours, at("2026-11-29T03:00:00+00:00"))


@pytest.mark.parametrize(
    ("zone", "schedule", "holidays", "reason"),
    [
        ("Mars/Olympus", {}, [], "time zone"),
        ("UTC", {"monday": [["09:00", "17:00"]]}, [], "Unknown day"),
        ("UTC", {"mon": [["9h", "17:00"]]}, [], "time like"),
        ("UTC", {}, ["25/12/2026"], "Holiday"),
    ],
)
def test_invalid_hours_are_refused(zone, schedule, holidays, reason):
    with pytest.raises(HoursInvalid, match=reason):
        parse_hours(zone, schedule, holidays)
