"""How close can any model of the record come to the oracle? (issue 6)

    python bench/risk_ceiling.py                      # the region data and warehouse of make bench-risk
    python bench/risk_ceiling.py --warehouse W --truth T.csv.gz --train-day 2022-01-01 --test-day 2023-01-01

The oracle of `naer risk evaluate` is the generator's true hazard on 1 January, which holds two things no
record shows: each citizen's frailty (a gamma factor of mean 1) and whether they are in the latent
"unstable" state that day. The generator writes both beside the hazard (truth/acute_admission_hazard.csv).
This benchmark fits the 12-month model exactly as `naer risk train` does (same features, parameters, split
and recalibration) on the training day, and again with true quantities added as features, and scores
each on the test day:

- the model (the record only);
- + the true deterioration state;
- + the true hazard without frailty and deterioration (every effect of what the record shows, exactly);
- + the true expected number of admissions over the citizen's history without frailty (the sum of the
  yearly hazards without frailty of the years before): with the admissions the history holds, exactly what
  a Bayesian estimate of the frailty needs;
- + both of these;
- + the true hazard without frailty (the third row's and the deterioration);
- + the true frailty.

The third to fifth rows are the ceiling of a model that knows perfectly how the observed facts act, now and
over the history, and must infer frailty and deterioration from the record, as any model must. Figures go
to docs/performance.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from naer.indicators import engine
from naer.risk import metrics
from naer.risk.evaluate import oracle
from naer.risk.features import features, prepare
from naer.risk.model import fit, population_features
from naer.synth.model import load_model

OUT = Path(__file__).parent / "out"
OUTCOME = "acute_admission_12m"
ADDED = {
    "the model (the record only)": [],
    "+ true deterioration state": ["true_unstable"],
    "+ true hazard without frailty and deterioration": ["true_log_hazard_observed"],
    "+ true expected admissions of the history": ["true_expected_admissions_history"],
    "+ both of the above": ["true_log_hazard_observed", "true_expected_admissions_history"],
    "+ true hazard without frailty": ["true_log_hazard_without_frailty"],
    "+ true frailty": ["true_frailty"],
}


def load_truth(con: duckdb.DuckDBPyConnection, truth: Path, unstable: float) -> None:
    """The truth file as table ``truth``, read once for both days (the unstable state's log hazard ratio
    ``unstable`` taken out of the hazard for the 'observed' one)."""
    columns = {
        c[0]
        for c in con.execute("DESCRIBE SELECT * FROM read_csv(?, header = true)", [str(truth)]).fetchall()
    }
    if not {"frailty", "unstable"} <= columns:
        raise SystemExit(
            f"{truth} has no frailty and unstable columns: it was written by an older naer synth; "
            "generate the data again (rm -r bench/out/region; make bench-risk)"
        )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE truth AS
           WITH t AS (
               SELECT patient_id, CAST(year AS INTEGER) AS year, CAST(unstable AS INTEGER) AS unstable,
                      CAST(frailty AS DOUBLE) AS frailty,
                      ln(CAST(annual_hazard AS DOUBLE) / CAST(frailty AS DOUBLE)) AS without_frailty
               FROM read_csv(?, header = true, all_varchar = true)
           )
           SELECT patient_id, year, unstable AS true_unstable, frailty AS true_frailty,
                  without_frailty AS true_log_hazard_without_frailty,
                  without_frailty - ? * unstable AS true_log_hazard_observed
           FROM t""",
        [str(truth), unstable],
    )


def with_truth(con: duckdb.DuckDBPyConnection, table: pa.Table, year: int) -> pa.Table:
    """``table`` with the generator's truth of ``year`` for each citizen as columns, and the expected
    admissions of the years before without frailty (``load_truth`` first)."""
    con.register("rows", table)
    try:
        result: pa.Table = con.execute(
            """SELECT r.*, t.* EXCLUDE (patient_id, year),
                      coalesce(h.expected, 0) AS true_expected_admissions_history
               FROM rows AS r
               LEFT JOIN truth AS t ON t.patient_id = r.patient_id AND t.year = ?
               LEFT JOIN (SELECT patient_id, sum(exp(true_log_hazard_without_frailty)) AS expected
                          FROM truth WHERE year < ? GROUP BY patient_id) AS h ON h.patient_id = r.patient_id
               ORDER BY r.patient_id""",
            [year, year],
        ).to_arrow_table()
    finally:
        con.unregister("rows")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=OUT / "region.duckdb")
    parser.add_argument(
        "--truth", type=Path, default=OUT / "region" / "truth" / "acute_admission_hazard.csv.gz"
    )
    parser.add_argument("--train-day", type=date.fromisoformat, default=date(2022, 1, 1))
    parser.add_argument("--test-day", type=date.fromisoformat, default=date(2023, 1, 1))
    args = parser.parse_args()
    console = Console()
    for path, make in ((args.warehouse, "make bench-risk"), (args.truth, "make bench-risk")):
        if not path.exists():
            raise SystemExit(f"no {path}: `{make}` makes the region data and its warehouse")
    unstable_hr = float(load_model().contacts["acute_admission"]["risk"]["unstable"])
    started = time.perf_counter()
    with engine.open_warehouse(args.warehouse) as con, console.status("features of both days") as status:
        load_truth(con, args.truth, unstable_hr)
        window = prepare(con)
        train = with_truth(con, features(con, args.train_day, window), args.train_day.year)
        test = with_truth(con, features(con, args.test_day, window), args.test_day.year)
        y = test.column(OUTCOME).cast(pa.float64()).to_numpy(zero_copy_only=False)
        best = oracle(con, args.truth, args.test_day, test, y)["auroc_oracle"]
        console.print(f"features: {time.perf_counter() - started:.0f} s; oracle AUROC {best:.4f}")
        table = Table(title=f"12-month acute admission, trained {args.train_day}, tested {args.test_day}")
        for name in ("model", "AUROC (95 % CI)", "share of the oracle", "trees", "seconds"):
            table.add_column(name, justify="left" if name == "model" else "right")
        for name, added in ADDED.items():
            status.update(f"fitting: {name}")
            t = time.perf_counter()
            model = fit(train, OUTCOME, population_features() + added)
            auc = metrics.auroc(y, model.predict(test))
            seconds = time.perf_counter() - t
            table.add_row(
                name,
                f"{auc[0]:.4f} ({auc[1]:.4f}-{auc[2]:.4f})",
                f"{100 * auc[0] / best:.1f} %",
                str(model.trained["trees"]),
                f"{seconds:.0f}",
            )
            console.print(
                f"{name}: AUROC {auc[0]:.4f}, {100 * auc[0] / best:.1f} % of the oracle", highlight=False
            )
    console.print(table)


if __name__ == "__main__":
    main()
