"""The data an evaluation stands on: each named indicator by municipality and month, from the warehouse
the national indicators are computed from (the same definitions, the same counting), for the
initiative's target group (its age and up).

A rate's monthly value is its events per ``per`` citizen-years in that month; a share's is the share of
its units. The designs work on these values, weighted by the denominator where they weigh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from naer.errors import UserError
from naer.indicators.definition import Indicator, catalogue
from naer.indicators.engine import Window, compute, data_window, open_warehouse, prepare


@dataclass
class Panel:
    indicator: Indicator
    units: list[str]  # municipality codes
    names: dict[str, str]
    months: list[str]  # YYYY-MM, every month of the data
    value: np.ndarray  # units x months
    numerator: np.ndarray
    denominator: np.ndarray

    def row(self, unit: str) -> int:
        return self.units.index(unit)

    def month(self, day: str) -> int:
        """The index of the month a date (YYYY-MM-DD or YYYY-MM) falls in."""
        return self.months.index(day[:7])

    def area(self, units: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Several municipalities as one area, month by month: their events over their denominators (the
        value, nan in a month without a denominator) and the denominator."""
        rows = [self.row(u) for u in units]
        num, den = self.numerator[rows].sum(axis=0), self.denominator[rows].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / den * self.indicator.per, np.nan), den


def panels(
    warehouse: Path, ids: list[str], min_age: int, until: date | None = None
) -> tuple[dict[str, Panel], Window]:
    """Each indicator of ``ids`` by municipality and month for citizens of ``min_age`` and up, and the data's
    whole window. ``until``: the months after it are not needed (an initiative's end): they are left out of
    the count, all but one more month, so a discharge's 30 days after it are still seen."""
    known = catalogue()
    indicators = []
    for each in ids:
        base = known[each]
        age = max(base.min_age, min_age)
        # A copy under its own id, so its tables do not meet the indicator's own (another age)
        indicators.append(base.model_copy(update={"id": f"{base.id}-from-{age}", "min_age": age}))
    with open_warehouse(warehouse) as con:
        whole = data_window(con)
        counted = whole
        if until is not None and until < whole.end - timedelta(days=31):
            counted = Window(whole.start, _first_of_next_month(until + timedelta(days=31)))
        prepare(con, counted)
        table = compute(con, indicators, "municipality", "month", counted)
    found: dict[str, Panel] = {}
    columns = table.to_pydict()
    for original, indicator in zip(ids, indicators, strict=True):
        rows = [i for i, name in enumerate(columns["indicator"]) if name == indicator.id]
        units = sorted({str(columns["group"][i]) for i in rows} - {"unknown"})
        months = sorted({str(columns["period"][i]) for i in rows})
        if not units or not months:
            raise UserError(f"the warehouse holds no {original} by municipality and month")
        shape = (len(units), len(months))
        value, num, den = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
        u_at, m_at = {u: k for k, u in enumerate(units)}, {m: k for k, m in enumerate(months)}
        names: dict[str, str] = {}
        for i in rows:
            unit = str(columns["group"][i])
            if unit not in u_at:
                continue
            k, t = u_at[unit], m_at[str(columns["period"][i])]
            value[k, t] = columns["value"][i]
            num[k, t], den[k, t] = columns["numerator"][i], columns["denominator"][i]
            names[unit] = str(columns["group_label"][i])
        found[original] = Panel(known[original], units, names, months, value, num, den)
    return found, whole


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
