"""Temporal validation: the models of one reference day scored on a later one, measured as a model card
reports it (TRIPOD): discrimination, calibration, the precision of a worklist, net benefit, the ceiling any
model could reach (the generator's true hazard), the published baselines, and every measure by sex, age band,
education and municipality, with the gaps that would make a worklist unfair flagged."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from naer.errors import UserError
from naer.indicators import engine
from naer.indicators.definition import groupings
from naer.risk import baselines, metrics
from naer.risk.features import YEAR, discharges, features
from naer.risk.model import Model

TOP = (0.01, 0.02, 0.05)
THRESHOLDS = np.round(np.arange(0.01, 0.51, 0.01), 2)
FAIRNESS = ("sex", "age_band", "education", "municipality_code")
AUROC_GAP = 0.03
SLOPE_RANGE = (0.8, 1.2)
TRUTH = ("truth/acute_admission_hazard.csv", "truth/acute_admission_hazard.csv.gz")


def _y(table: pa.Table, outcome: str) -> np.ndarray:
    result: np.ndarray = table.column(outcome).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return result


def _ci(value: tuple[float, float, float]) -> dict[str, float]:
    return {"value": value[0], "low": value[1], "high": value[2]}


def measures(y: np.ndarray, p: np.ndarray, bootstrap: int = 100) -> dict[str, Any]:
    """Every measure of one score on one set, with 95 % intervals (DeLong for AUROC, Fisher information for
    the calibration slope and intercept, normal for the Brier score, Wilson for precision, a bootstrap of
    ``bootstrap`` samples for AUPRC)."""
    auc = metrics.auroc(y, p)
    (slope, slope_se), (intercept, intercept_se) = metrics.calibration_ci(y, p)
    out: dict[str, Any] = {
        "n": len(y),
        "events": int(y.sum()),
        "observed": float(y.mean()),
        "predicted": float(p.mean()),
        "auroc": auc[0],
        "auroc_ci": [auc[1], auc[2]],
        "calibration_slope": slope,
        "calibration_slope_ci": [slope - metrics.Z95 * slope_se, slope + metrics.Z95 * slope_se],
        "calibration_intercept": intercept,
        "calibration_intercept_ci": [
            intercept - metrics.Z95 * intercept_se,
            intercept + metrics.Z95 * intercept_se,
        ],
    }
    brier = metrics.brier_ci(y, p)
    out["brier"], out["brier_ci"] = brier[0], [brier[1], brier[2]]
    if bootstrap:
        prc = metrics.auprc_ci(y, p, reps=bootstrap)
        out["auprc"], out["auprc_ci"] = prc[0], [prc[1], prc[2]]
        out["precision_top"] = {f"{round(f * 100)}%": _ci(metrics.precision_at_ci(y, p, f)) for f in TOP}
    return out


def _age_band(age: np.ndarray) -> list[str]:
    bands = groupings()["age_bands"]
    labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bands)] + [f"{bands[-1]}+"]
    return [labels[i] for i in np.searchsorted(bands, age, side="right") - 1]


def by_group(table: pa.Table, y: np.ndarray, p: np.ndarray, overall: float) -> list[dict[str, Any]]:
    """The measures in each group of each fairness grouping, with the AUROC gap to the whole population and
    flags where the gap exceeds 0.03 or the calibration slope leaves 0.8-1.2."""
    rows = []
    for grouping in FAIRNESS:
        if grouping == "age_band":
            values = _age_band(table.column("age").to_numpy(zero_copy_only=False))
        else:
            values = [v if v is not None else "unknown" for v in table.column(grouping).to_pylist()]
        keys = np.asarray(values, dtype=object)
        for group in sorted(set(values), key=str):
            mask = keys == group
            yg, pg = y[mask], p[mask]
            row: dict[str, Any] = {"grouping": grouping.removesuffix("_code"), "group": str(group)}
            if yg.sum() < 5 or (len(yg) - yg.sum()) < 5:
                row.update({"n": len(yg), "events": int(yg.sum()), "flags": ["too few events to measure"]})
                rows.append(row)
                continue
            row.update(measures(yg, pg, bootstrap=0))
            row["auroc_gap"] = overall - row["auroc"]
            flags = []
            if abs(row["auroc_gap"]) > AUROC_GAP:
                flags.append(
                    f"AUROC {row['auroc']:.3f} is {abs(row['auroc_gap']):.3f} from the whole population's"
                )
            if not SLOPE_RANGE[0] <= row["calibration_slope"] <= SLOPE_RANGE[1]:
                flags.append(f"calibration slope {row['calibration_slope']:.2f} outside 0.8-1.2")
            row["flags"] = flags
            rows.append(row)
    return rows


def truth_file(input_path: Path | None) -> Path | None:
    """The generator's record of each citizen's true yearly hazard, where the data comes from naer synth."""
    if input_path is None:
        return None
    for name in TRUTH:
        if (input_path / name).is_file():
            return input_path / name
    return None


def oracle(
    con: duckdb.DuckDBPyConnection, truth: Path | None, reference: date, table: pa.Table, y: np.ndarray
) -> dict[str, Any]:
    """The AUROC of the true probability of the year (the best any model could reach on these citizens)."""
    if truth is None:
        return {"auroc_oracle": None, "oracle_note": "no truth file: the data does not come from naer synth"}
    if (reference.month, reference.day) != (1, 1):
        return {
            "auroc_oracle": None,
            "oracle_note": "the generator records the true hazard on 1 January only",
        }
    ids = pa.table({"patient_id": table.column("patient_id"), "row": pa.array(np.arange(table.num_rows))})
    con.register("risk_rows", ids)
    try:
        found = con.execute(
            # by name, so that the generator's further columns (frailty, unstable) are no concern here
            """SELECT r.row, CAST(t.probability_12m AS DOUBLE) AS probability_12m
               FROM read_csv(?, header = true, all_varchar = true) AS t
               JOIN risk_rows AS r ON r.patient_id = t.patient_id
               WHERE CAST(t.year AS INTEGER) = ?""",
            [str(truth), reference.year],
        ).fetchnumpy()
    except duckdb.Error as error:
        raise UserError(f"cannot read the truth file {truth}: {str(error).splitlines()[0]}") from None
    finally:
        con.unregister("risk_rows")
    rows = found["row"].astype(np.int64)
    if len(rows) == 0:
        return {"auroc_oracle": None, "oracle_note": f"the truth file has no citizens of {reference.year}"}
    auc = metrics.auroc(y[rows], found["probability_12m"].astype(float))
    return {
        "auroc_oracle": auc[0],
        "auroc_oracle_ci": [auc[1], auc[2]],
        "oracle_citizens": len(rows),
        "oracle_note": (
            f"true probability of an admission in {reference.year} from the generator ({truth.name})"
        ),
    }


def evaluate(
    con: duckdb.DuckDBPyConnection,
    window: engine.Window,
    bundle: dict[str, Any],
    reference: date,
    truth: Path | None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``metrics.json``'s content, and the curves the report draws."""
    step = on_step or (lambda _name: None)
    trained_on = date.fromisoformat(bundle["reference_date"])
    if reference <= trained_on:
        raise UserError(
            f"evaluate on a later reference day than the model was trained on ({trained_on}): "
            f"{reference} is not later"
        )
    models: dict[str, Model] = bundle["models"]
    population = features(con, reference, window)
    step("features")
    y = _y(population, "acute_admission_12m")
    p = models["acute_admission_12m"].predict(population)
    result: dict[str, Any] = {
        "outcome": "acute_admission_12m",
        "reference_date": reference.isoformat(),
        "trained_reference_date": trained_on.isoformat(),
        # every day the model learnt from (several when citizen-years were stacked), the latest above
        "trained_reference_dates": list(bundle["reference_dates"]),
        **measures(y, p),
    }
    result.update(oracle(con, truth, reference, population, y))
    if result["auroc_oracle"]:
        result["oracle_share"] = result["auroc"] / result["auroc_oracle"]
    age_charlson = baselines.age_charlson(bundle["baselines"]["age_charlson"], population)
    result["baselines"] = {"age_charlson": measures(y, age_charlson, bootstrap=0)}
    step("12-month admission")
    result["by_group"] = by_group(population, y, p, result["auroc"])
    result["flags"] = [f"{r['grouping']} {r['group']}: {f}" for r in result["by_group"] for f in r["flags"]]
    step("fairness")
    older = population.filter(pc.is_valid(population["preventable_admission_12m"]))
    yo = _y(older, "preventable_admission_12m")
    result["preventable_admission_12m"] = measures(yo, models["preventable_admission_12m"].predict(older), 0)
    step("preventable admission")
    stays = discharges(con, reference, reference + YEAR, window)
    yr = _y(stays, "readmission_30d")
    pr = models["readmission_30d"].predict(stays)
    readmission = measures(yr, pr, bootstrap=0)
    lace, hospital = baselines.lace(stays), baselines.hospital(stays)
    for name, score in (("lace", lace), ("hospital", hospital)):
        auc = metrics.auroc(yr, score)
        readmission[f"auroc_{name}"], readmission[f"auroc_{name}_ci"] = auc[0], [auc[1], auc[2]]
    readmission["auroc_gain_over_lace"] = readmission["auroc"] - readmission["auroc_lace"]
    readmission["hospital_items_missing"] = list(baselines.HOSPITAL_MISSING)
    result["readmission_30d"] = readmission
    step("readmission")
    result["goals"] = {
        "auroc_at_least_95_percent_of_oracle": (
            None if not result["auroc_oracle"] else bool(result["oracle_share"] >= 0.95)
        ),
        "calibration_slope_0.9_to_1.1": bool(0.9 <= result["calibration_slope"] <= 1.1),
        "readmission_auroc_0.05_above_lace": bool(readmission["auroc_gain_over_lace"] >= 0.05),
    }
    nb_model = metrics.net_benefit(y, p, THRESHOLDS)
    nb_baseline = metrics.net_benefit(y, age_charlson, THRESHOLDS)
    nb_everyone = metrics.net_benefit(y, np.ones_like(y), THRESHOLDS)
    curves = {
        "calibration": metrics.calibration_curve(y, p),
        "calibration_readmission": metrics.calibration_curve(yr, pr, bins=10),
        "decision": [
            {"threshold": float(t), "strategy": name, "net_benefit": float(v)}
            for t, m, b, e in zip(THRESHOLDS, nb_model, nb_baseline, nb_everyone, strict=True)
            for name, v in (("model", m), ("age + Charlson", b), ("everyone", e), ("no one", 0.0))
        ],
    }
    result["net_benefit"] = [
        {"threshold": float(t), "model": float(m), "age_charlson": float(b)}
        for t, m, b in zip(THRESHOLDS, nb_model, nb_baseline, strict=True)
    ]
    return result, curves
