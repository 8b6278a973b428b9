from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, parse_schedule
from shared.errors import ConfigError


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


class TestParse:
    def test_six_fields_with_steps_lists_and_ranges(self) -> None:
        schedule = parse_schedule("*/15 0,30 9-17/4 * * *")
        assert isinstance(schedule, CronSchedule)
        assert schedule.seconds == {0, 15, 30, 45}
        assert schedule.minutes == {0, 30}
        assert schedule.hours == {9, 13, 17}

    def test_five_fields_mean_second_zero(self) -> None:
        schedule = parse_schedule("30 9 * * *")
        assert isinstance(schedule, CronSchedule)
        assert schedule.seconds == {0} and schedule.minutes == {30} and schedule.hours == {9}

    def test_names_of_months_and_days_in_any_case(self) -> None:
        schedule = parse_schedule("0 0 8 * jan-MAR,Dec Mon-fri")
        assert isinstance(schedule, CronSchedule)
        assert schedule.months == {1, 2, 3, 12}
        assert schedule.weekdays == {1, 2, 3, 4, 5}

    def test_seven_is_sunday_and_value_slash_step_runs_to_the_end(self) -> None:
        schedule = parse_schedule("0 50/5 * * * 5-7")
        assert isinstance(schedule, CronSchedule)
        assert schedule.weekdays == {5, 6, 0}
        assert schedule.minutes == {50, 55}

    def test_timespan_is_an_interval(self) -> None:
        schedule = parse_schedule("01:30:00")
        assert isinstance(schedule, IntervalSchedule)
        assert schedule.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 1, 30)

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("", "empty"),
            ("* * * *", "expected 6 fields"),
            ("* * * * * * *", "expected 6 fields"),
            ("60 * * * * *", "second field '60': 60 is outside 0-59"),
            ("0 0 24 * * *", "hour field"),
            ("0 0 0 0 * *", "day field"),
            ("0 0 0 * 13 *", "month field"),
            ("0 0 0 * * funday", "day-of-week field"),
            ("*/0 * * * * *", "step"),
            ("10-5 * * * * *", "runs backwards"),
            ("a * * * * *", "not a number"),
            ("0 0 0 30 2 *", "never fires"),
            ("25:00:00", "invalid TimeSpan"),
        ],
    )
    def test_bad_schedules_are_refused_with_the_reason(self, expression: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            parse_schedule(expression)


class TestNextOccurrence:
    @pytest.mark.parametrize(
        ("expression", "after", "expected"),
        [
            ("0 */5 * * * *", at(2026, 1, 1, 0, 4, 59), at(2026, 1, 1, 0, 5)),
            ("0 */5 * * * *", at(2026, 1, 1, 0, 5), at(2026, 1, 1, 0, 10)),  # strictly after
            ("0 */5 * * * *", at(2026, 12, 31, 23, 59, 1), at(2027, 1, 1)),
            ("*/10 * * * * *", at(2026, 1, 1, 0, 0, 0, 500000), at(2026, 1, 1, 0, 0, 10)),
            ("0 30 9 * * Mon-Fri", at(2026, 11, 27, 10), at(2026, 11, 30, 9, 30)),  # Fri -> Mon
            ("0 0 0 29 Feb *", at(2026, 3, 1), at(2028, 2, 29)),
            ("0 0 12 31 * *", at(2026, 4, 1), at(2026, 5, 31, 12)),  # skips 30-day April
            # NCrontab: a restricted day AND day-of-week must both match (Friday the 13th).
            ("0 0 0 13 * Fri", at(2026, 1, 1), at(2026, 2, 13)),
        ],
    )
    def test_next_after(self, expression: str, after: datetime, expected: datetime) -> None:
        assert parse_schedule(expression).next_after(after) == expected

    def test_occurrences_all_match_and_none_is_skipped(self) -> None:
        schedule = parse_schedule("0 0,20 8-10 * * 1,3")
        assert isinstance(schedule, CronSchedule)
        moment = at(2026, 6, 1)
        seen = []
        for _ in range(12):
            moment = schedule.next_after(moment)
            assert schedule.matches(moment)
            seen.append(moment)
        assert seen[:6] == [at(2026, 6, 1, h, m) for h in (8, 9, 10) for m in (0, 20)]
        assert seen[6] == at(2026, 6, 3, 8)
        assert all(b - a >= timedelta(minutes=20) for a, b in zip(seen, seen[1:], strict=False))

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            parse_schedule("* * * * * *").next_after(datetime(2026, 1, 1))
