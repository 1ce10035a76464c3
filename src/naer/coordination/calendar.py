"""Working days and hours in Denmark, for answer times that are agreed in working days ("within three
working days", "the same day").

Public holidays come from the ``holidays`` library (Danish law's helligdage: New Year, Maundy Thursday,
Good Friday, Easter, Easter Monday, Ascension, Whit Sunday and Monday, Christmas Day and Boxing Day;
Great Prayer Day until 2023, abolished from 2024 by lov nr. 205 of 28 February 2023). Days that are not
holidays by law but on which an agreement's parties are closed (Constitution Day, Christmas Eve, New
Year's Eve) are the agreement's own ``also_closed`` list. Times are Danish wall-clock times
(Europe/Copenhagen, with summer time); deadlines come back in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

DANISH_TIME = ZoneInfo("Europe/Copenhagen")


@cache
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DK", years=year))


def is_public_holiday(day: date) -> bool:
    return day in _public_holidays(day.year)


@dataclass(frozen=True)
class WorkingCalendar:
    """Weekdays that are neither a public holiday nor one of ``also_closed`` (month, day), from
    ``opens`` to ``closes`` Danish time."""

    opens: time = time(8, 0)
    closes: time = time(15, 30)
    also_closed: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() < 5 and not is_public_holiday(day) and (day.month, day.day) not in self.also_closed
        )

    def next_working_day(self, day: date) -> date:
        """The first working day after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def closing(self, day: date) -> datetime:
        """When the working day ``day`` ends, in UTC."""
        return datetime.combine(day, self.closes, DANISH_TIME).astimezone(UTC)

    def working_day_of(self, moment: datetime) -> date:
        """The working day a message sent at ``moment`` is counted from: its own day when that is a working
        day and it came before closing time, else the next working day."""
        local = moment.astimezone(DANISH_TIME)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.closes:
            return day
        return self.next_working_day(day)

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """Closing time of the ``days``-th working day after the day ``moment`` is counted from (0: that
        day itself)."""
        day = self.working_day_of(moment)
        for _ in range(days):
            day = self.next_working_day(day)
        return self.closing(day)

    def same_working_day(self, moment: datetime, cutoff: time) -> datetime:
        """Closing time of the day sent, when it is a working day and the message came before
        ``cutoff``; otherwise closing time of the next working day."""
        local = moment.astimezone(DANISH_TIME)
        day = local.date()
        if self.is_working_day(day) and local.time() < cutoff:
            return self.closing(day)
        return self.closing(self.next_working_day(day))
