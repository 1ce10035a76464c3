"""The published scores a model must beat, computed exactly as published from what Nær's data holds:

- LACE (van Walraven C et al., CMAJ 2010;182:551-557) for 30-day readmission or death: Length of stay,
  Acuity of admission, Comorbidity (Charlson index), Emergency department visits in the 6 months before.
- HOSPITAL (Donzé J et al., JAMA Intern Med 2013;173:632-638) for 30-day potentially avoidable readmission:
  Haemoglobin < 12 g/dL at discharge, discharge from Oncology, Sodium < 135 mmol/L at discharge, Procedure
  during the stay, Index admission type urgent, Admissions in the previous 12 months, Length of stay of 5
  days or more.
  Nær holds no laboratory results or procedures: H, S and P score 0 for everyone (docs/model-card.md).
- Age + Charlson: a logistic regression of the 12-month outcome on age, age squared and the Charlson index,
  fitted on the training year.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from naer.risk import metrics


def _column(table: pa.Table, name: str) -> np.ndarray:
    result: np.ndarray = table.column(name).cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
    return result


def lace(table: pa.Table) -> np.ndarray:
    """LACE points (0-19) of each discharge."""
    los = _column(table, "los_days")
    length = np.select([los < 1, los <= 3, los <= 6, los <= 13], [0, los, 4, 5], default=7)
    acuity = np.where(_column(table, "acute") > 0, 3, 0)
    charlson = _column(table, "charlson_index")
    comorbidity = np.where(charlson >= 4, 5, charlson)
    emergency = np.minimum(_column(table, "ed_visits_6m"), 4)
    result: np.ndarray = length + acuity + comorbidity + emergency
    return result


# The items Nær's data cannot supply, scored 0 for every discharge.
HOSPITAL_MISSING = (
    "haemoglobin < 12 g/dL at discharge",
    "sodium < 135 mmol/L at discharge",
    "procedure during the stay",
)


def hospital(table: pa.Table) -> np.ndarray:
    """HOSPITAL points (0-13 as published; at most 10 here, without H, S and P)."""
    oncology = np.where(_column(table, "oncology_discharge") > 0, 2, 0)
    urgent = np.where(_column(table, "acute") > 0, 1, 0)
    admissions = _column(table, "admissions_12m")
    previous = np.select([admissions <= 1, admissions <= 5], [0, 2], default=5)
    long_stay = np.where(_column(table, "los_days") >= 5, 2, 0)
    result: np.ndarray = oncology + urgent + previous + long_stay
    return result


def _age_charlson_design(table: pa.Table) -> np.ndarray:
    age = _column(table, "age")
    return np.column_stack([np.ones_like(age), age / 10, (age / 10) ** 2, _column(table, "charlson_index")])


def fit_age_charlson(table: pa.Table, outcome: str) -> dict[str, Any]:
    y = table.column(outcome).cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
    beta, _ = metrics.logistic(_age_charlson_design(table), y)
    return {"terms": ["intercept", "age/10", "(age/10)^2", "charlson_index"], "coefficients": beta.tolist()}


def age_charlson(fitted: dict[str, Any], table: pa.Table) -> np.ndarray:
    eta = _age_charlson_design(table) @ np.asarray(fitted["coefficients"])
    result: np.ndarray = 1 / (1 + np.exp(-np.clip(eta, -30, 30)))
    return result
