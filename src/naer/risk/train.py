"""Training on one or more reference days: the 12-month models on the citizens living in the area each day
(a citizen once per day: citizen-years), the readmission model on the discharges of the year from each day,
and the age + Charlson baseline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from naer.errors import UserError
from naer.indicators import engine
from naer.risk import baselines
from naer.risk.features import YEAR, check_reference, discharges, features
from naer.risk.model import discharge_features, fit, population_features


def train(
    con: duckdb.DuckDBPyConnection,
    window: engine.Window,
    references: list[date],
    on_step: Callable[[str], None] | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """The model file's content (``model.save`` writes it)."""
    step = on_step or (lambda _name: None)
    if not references:
        raise UserError("give at least one --reference-date")
    references = sorted(set(references))
    for day in references:
        check_reference(day, window, outcome=True)
    population = pa.concat_tables([features(con, day, window) for day in references])
    step("features")
    models = {"acute_admission_12m": fit(population, "acute_admission_12m", population_features(), seed)}
    step("acute_admission_12m")
    # fit keeps the rows whose outcome is known: for a preventable admission, the citizens 65+
    models["preventable_admission_12m"] = fit(
        population, "preventable_admission_12m", population_features(), seed
    )
    step("preventable_admission_12m")
    stays = pa.concat_tables([discharges(con, day, day + YEAR, window) for day in references])
    models["readmission_30d"] = fit(stays, "readmission_30d", discharge_features(), seed)
    step("readmission_30d")
    return {
        "reference_date": references[-1].isoformat(),
        "reference_dates": [day.isoformat() for day in references],
        "data_window": [window.start.isoformat(), window.end.isoformat()],
        "models": {name: m.to_json() for name, m in models.items()},
        "baselines": {"age_charlson": baselines.fit_age_charlson(population, "acute_admission_12m")},
    }
