"""Gradient-boosted risk models (LightGBM) with a logistic recalibration, kept in a JSON file that says what
they were trained on, so that a file from another Nær or for other features is refused instead of scoring
nonsense.

Each model learns on part of the citizens of its reference day, stops adding trees when a second part stops
improving, and is recalibrated on a third (calibration slope and intercept fitted on the model's log-odds):
the probabilities mean what they say on data it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import naer
from naer.errors import UserError
from naer.risk import metrics
from naer.risk.features import chronic_conditions

MODEL_FORMAT = 1
KIND = "naer-risk-model"
CATEGORICAL = ("sex", "municipality_code", "gp_clinic_id", "education", "income", "main_chapter")


def population_features() -> list[str]:
    """What the 12-month models read, as of the reference day."""
    return [
        "age", "sex", "municipality_code", "gp_clinic_id", "education", "income", "history_days",
        "acute_admissions_6m", "acute_admissions_12m", "acute_admissions_36m", "acute_admissions_60m",
        "acute_admissions_ever", "acute_admission_rate", "ed_visit_rate", "planned_admissions_12m",
        "bed_days_12m", "days_since_discharge", "ed_visits_6m", "ed_visits_12m", "ed_visits_36m",
        "ed_visits_60m", "ed_visits_ever",
        "gp_contacts_1m", "gp_contacts_3m", "gp_contacts_12m", "out_of_hours_1m", "out_of_hours_3m",
        "out_of_hours_12m", "outpatient_visits_12m", "acute_bed_stays_12m", "home_care",
        "charlson_index", "elixhauser_conditions", "chronic_conditions", *chronic_conditions(),
        "lives_alone", "home_measurements_60d", "weight_change_kg", "spo2_change",
    ]  # fmt: skip


def discharge_features() -> list[str]:
    """What the readmission model reads, at the discharge."""
    return [
        "age", "sex", "municipality_code", "gp_clinic_id", "education", "income",
        "los_days", "acute", "main_chapter", "admissions_12m", "acute_admissions_12m", "bed_days_12m",
        "days_since_discharge", "ed_visits_6m", "gp_contacts_12m", "home_care", "charlson_index",
        "elixhauser_conditions", "chronic_conditions", *chronic_conditions(), "lives_alone",
        "oncology_discharge",
    ]  # fmt: skip


PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    # small trees: on the region 7 leaves ranked better than 15, 31 or 63 (docs/model-card.md)
    "num_leaves": 7,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 20,
    "min_data_per_group": 200,
    "max_bin": 63,
    "verbose": -1,
}


@dataclass
class Model:
    """One fitted outcome model: its booster, the features it reads and how it codes them, and the
    recalibration of its log-odds (``intercept + slope * raw``)."""

    outcome: str
    features: list[str]
    categories: dict[str, list[str]]
    booster: lgb.Booster
    intercept: float
    slope: float
    trained: dict[str, Any]

    def matrix(self, table: pa.Table) -> np.ndarray:
        missing = [f for f in self.features if f not in table.column_names]
        if missing:
            raise UserError(
                f"the {self.outcome} model needs the features {', '.join(missing)}, which the data lacks"
            )
        return matrix(table, self.features, self.categories)

    def raw(self, x: np.ndarray) -> np.ndarray:
        result = np.asarray(self.booster.predict(x, raw_score=True, num_threads=_threads(len(x))))
        return result

    def predict(self, table: pa.Table) -> np.ndarray:
        """Calibrated probabilities of the outcome."""
        return _sigmoid(self.intercept + self.slope * self.raw(self.matrix(table)))

    def contributions(self, table: pa.Table) -> np.ndarray:
        """Each feature's contribution to each row's log-odds (TreeSHAP, scaled by the recalibration slope);
        the last column is the baseline."""
        x = self.matrix(table)
        result = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=_threads(len(x))))
        scaled: np.ndarray = result * self.slope
        return scaled

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "features": self.features,
            "categories": self.categories,
            "calibration": {"intercept": self.intercept, "slope": self.slope},
            "trained": self.trained,
            "booster": self.booster.model_to_string(),
        }


def _threads(rows: int) -> int:
    """All cores for a region; one for a small data set, where OpenMP's waiting between threads costs more
    than the work (and, on a busy machine, very much more)."""
    return max(len(os.sched_getaffinity(0)), 1) if rows >= 100_000 else 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1 / (1 + np.exp(-np.clip(x, -30, 30)))
    return result


def categories_of(table: pa.Table, features: list[str]) -> dict[str, list[str]]:
    """The values of each categorical feature seen in training, sorted: their codes in the model."""
    out = {}
    for name in features:
        if name in CATEGORICAL:
            values = table.column(name).unique().to_pylist()
            out[name] = sorted(str(v) for v in values if v is not None)
    return out


def matrix(table: pa.Table, features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """The features as a float matrix: numbers as they are, booleans 0/1, categories as their training codes;
    nulls and categories unseen in training are missing (NaN), which the trees route as they learnt."""
    x = np.empty((table.num_rows, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = table.column(name)
        if name in categories:
            codes = pc.index_in(column.cast(pa.string()), value_set=pa.array(categories[name], pa.string()))
            x[:, j] = codes.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            x[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return x


def fit(table: pa.Table, outcome: str, features: list[str], seed: int = 1, rounds: int = 2000) -> Model:
    """Fit a model of ``outcome`` on the rows where it is known: 80 % to learn, 10 % to stop, 10 % to
    recalibrate (split at random by row with ``seed``)."""
    table = table.filter(pc.is_valid(table[outcome]))
    y = table.column(outcome).cast(pa.float64()).to_numpy(zero_copy_only=False)
    if y.sum() < 20 or (len(y) - y.sum()) < 20:
        raise UserError(
            f"too few rows to learn {outcome}: {int(y.sum())} with and {int(len(y) - y.sum())} without it "
            "(at least 20 of each)"
        )
    categories = categories_of(table, features)
    x = matrix(table, features, categories)
    rng = np.random.default_rng(seed)
    part = rng.random(len(y))
    learn, stop, recalibrate = part < 0.8, (part >= 0.8) & (part < 0.9), part >= 0.9
    # leaves of at least 200 rows on a region, fewer on a small island (else no tree could split at all)
    leaf = int(min(200, max(10, learn.sum() // 100)))
    params = {
        **PARAMS,
        "min_data_in_leaf": leaf,
        "min_data_per_group": leaf,
        "seed": seed,
        "num_threads": _threads(len(y)),
        "deterministic": True,
        "force_row_wise": True,
    }
    cat_index = [j for j, f in enumerate(features) if f in categories]
    data = lgb.Dataset(
        x[learn], y[learn], feature_name=features, categorical_feature=cat_index, free_raw_data=True
    )
    valid = lgb.Dataset(x[stop], y[stop], reference=data)
    booster = lgb.train(
        params,
        data,
        num_boost_round=rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    raw = booster.predict(x[recalibrate], raw_score=True, num_iteration=booster.best_iteration)
    ones = np.ones_like(raw)
    beta, _ = metrics.logistic(np.column_stack([ones, raw]), y[recalibrate])
    booster.free_dataset()
    best = booster.best_iteration or booster.current_iteration()
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return Model(
        outcome=outcome,
        features=features,
        categories=categories,
        booster=booster,
        intercept=float(beta[0]),
        slope=float(beta[1]),
        trained={"rows": len(y), "events": int(y.sum()), "trees": int(best), "seed": seed},
    )


def model_from_json(data: dict[str, Any]) -> Model:
    return Model(
        outcome=data["outcome"],
        features=list(data["features"]),
        categories={k: list(v) for k, v in data["categories"].items()},
        booster=lgb.Booster(model_str=data["booster"]),
        intercept=float(data["calibration"]["intercept"]),
        slope=float(data["calibration"]["slope"]),
        trained=dict(data["trained"]),
    )


def feature_signature() -> str:
    """A digest of the features this Nær computes (names and code schemes): a model trained on others is
    refused."""
    from naer.risk.features import SCHEMES, scheme

    payload = json.dumps(
        {
            "population": population_features(),
            "discharge": discharge_features(),
            "schemes": {name: scheme(name)["conditions"] for name in SCHEMES},
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def save(path: Path, bundle: dict[str, Any]) -> None:
    """Write the model file atomically (a half-written model is never left under the name)."""
    document = {
        "kind": KIND,
        "format": MODEL_FORMAT,
        "naer_version": naer.__version__,
        "feature_signature": feature_signature(),
        **bundle,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(json.dumps(document), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """Read a model file and refuse one that is not Nær's, from another model format, or trained on other
    features than this Nær computes."""
    if not path.is_file():
        raise UserError(
            f"no model file {path}: make one with `naer risk train --input DATA_DIR --reference-date DAY "
            f"--model {path}`"
        )
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not a Nær risk model (not JSON: {error})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise UserError(f"{path} is not a Nær risk model")
    if document.get("format") != MODEL_FORMAT:
        raise UserError(
            f"{path} was written by Nær {document.get('naer_version', '?')} in model format "
            f"{document.get('format')}; this Nær ({naer.__version__}) reads format {MODEL_FORMAT}: "
            "train it again with `naer risk train`"
        )
    if document.get("feature_signature") != feature_signature():
        raise UserError(
            f"{path} was trained on other features than this Nær computes (signature "
            f"{document.get('feature_signature')}, now {feature_signature()}): "
            "train it again with `naer risk train`"
        )
    try:
        document["models"] = {k: model_from_json(v) for k, v in document["models"].items()}
    except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as error:
        raise UserError(f"{path} is damaged: {error}") from None
    return document
