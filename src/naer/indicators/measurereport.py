"""Indicator results as FHIR R4 MeasureReport resources (type summary), one per indicator and period.

The whole area is the report's group; the units of ``--by`` are the strata of one stratifier, each with its
numerator, denominator and score. A rate's denominator is person-time, which FHIR counts in whole numbers:
the count is the rounded number of citizen-years, and the score carries the exact rate.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pyarrow as pa

from naer.indicators.definition import Indicator

MEASURE = "https://naer.example.org/fhir/Measure/"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
STRATIFIER = "https://naer.example.org/fhir/CodeSystem/indicator-grouping"


def _period(label: str) -> dict[str, str]:
    year = int(label[:4])
    if len(label) == 4:
        return {"start": f"{year}-01-01", "end": f"{year}-12-31"}
    if "-Q" in label:
        q = int(label[-1])
        first = date(year, 3 * q - 2, 1)
        last = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    else:
        month = int(label[5:7])
        first = date(year, month, 1)
        last = date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    return {"start": first.isoformat(), "end": date.fromordinal(last.toordinal() - 1).isoformat()}


def _populations(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"code": {"coding": [{"system": POPULATION, "code": "numerator"}]}, "count": round(row["numerator"])},
        {
            "code": {"coding": [{"system": POPULATION, "code": "denominator"}]},
            "count": round(row["denominator"]),
        },
    ]


def _score(indicator: Indicator, value: float | None) -> dict[str, Any]:
    unit = "%" if indicator.kind == "share" else f"/{indicator.per} citizen-years"
    return {"value": round(value, 6) if value is not None and value == value else None, "unit": unit}


def measure_reports(
    indicators: dict[str, Indicator], area: pa.Table, units: pa.Table, by: str, made: str
) -> list[dict[str, Any]]:
    """``area``: rows of grouping ``all``; ``units``: rows of grouping ``by`` (the same periods)."""
    strata: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in units.to_pylist():
        strata[(row["indicator"], row["period"])].append(row)
    out = []
    for row in area.to_pylist():
        indicator = indicators[row["indicator"]]
        group: dict[str, Any] = {
            "code": {"text": indicator.title},
            "population": _populations(row),
            "measureScore": _score(indicator, row["value"]),
        }
        if by != "all":
            group["stratifier"] = [
                {
                    "code": [{"coding": [{"system": STRATIFIER, "code": by}]}],
                    "stratum": [
                        {
                            "value": {"text": s["group_label"], "coding": [{"code": s["group"]}]},
                            "population": _populations(s),
                            "measureScore": _score(indicator, s["value"]),
                        }
                        for s in strata[(row["indicator"], row["period"])]
                    ],
                }
            ]
        out.append(
            {
                "resourceType": "MeasureReport",
                "id": f"{indicator.id}-{by}-{row['period']}".lower(),
                "status": "complete",
                "type": "summary",
                "measure": MEASURE + indicator.id,
                "date": made,
                "period": _period(row["period"]),
                "improvementNotation": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                            "code": "decrease" if indicator.direction == "lower-is-better" else "increase",
                        }
                    ]
                }
                if indicator.direction != "neutral"
                else None,
                "group": [group],
            }
        )
        if out[-1]["improvementNotation"] is None:
            del out[-1]["improvementNotation"]
    return out
