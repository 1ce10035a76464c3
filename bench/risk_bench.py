"""Benchmark the risk models on the whole of Region Midtjylland (issue 6).

    python bench/risk_bench.py                        # bench/out/region(.duckdb), made when missing
    python bench/risk_bench.py --train-day 2022-01-01 --test-day 2023-01-01

Each step runs `naer risk ...` as a user does, in a child process (wall time and the child's peak memory):
1. `naer risk train` on one reference day from the views' warehouse (target: under 10 minutes, under 8 GB);
2. `naer risk evaluate` on the next year: the goals (AUROC at least 95 % of the oracle's, calibration slope
   0.9-1.1, readmission AUROC 0.05 above LACE's) are read from its metrics.json;
3. `naer risk worklist` for every GP clinic and municipality (top 20 each);
and then, in this process, scoring every citizen of a day (features from the prepared tables + the model's
probabilities; target: under 60 s). Figures go to docs/performance.md and docs/model-card.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from indicators_bench import OUT, _ensure_warehouse, _run


def _score(warehouse: Path, model: Path, day: date) -> tuple[float, float, int]:
    """Seconds to prepare the shared tables, seconds to score every citizen of ``day``, and how many."""
    from naer.indicators import engine
    from naer.risk import model as models
    from naer.risk.features import features, prepare

    bundle = models.load(model)
    with engine.open_warehouse(warehouse) as con:
        began = time.perf_counter()
        window = prepare(con)
        prepared = time.perf_counter() - began
        began = time.perf_counter()
        population = features(con, day, window, outcome=False)
        bundle["models"]["acute_admission_12m"].predict(population)
        return prepared, time.perf_counter() - began, population.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", type=Path, default=OUT / "region.duckdb")
    parser.add_argument("--data", type=Path, default=OUT / "region")
    parser.add_argument("--train-day", default="2022-01-01")
    parser.add_argument("--test-day", default="2023-01-01")
    parser.add_argument("--score-day", default="2024-12-31")
    args = parser.parse_args()
    _ensure_warehouse(args.warehouse, args.data)
    work = OUT / "risk"
    work.mkdir(parents=True, exist_ok=True)
    model, report, tasks = work / "model.json", work / "report", work / "tasks.ndjson"
    common = ["--warehouse", str(args.warehouse)]
    truth = [p for p in (args.data / "truth").glob("acute_admission_hazard.csv*")]

    seconds, gb, _ = _run(
        ["risk", "train", *common, "--reference-date", args.train_day, "--model", str(model)]
    )
    print(f"train ({args.train_day}): {seconds:.1f} s, peak {gb:.2f} GB (target < 600 s, < 8 GB)", flush=True)
    extra = ["--truth", str(truth[0])] if truth else []
    seconds, gb, _ = _run(
        [
            "risk",
            "evaluate",
            *common,
            "--model",
            str(model),
            "--reference-date",
            args.test_day,
            "--out",
            str(report),
            *extra,
        ]
    )
    print(f"evaluate ({args.test_day}): {seconds:.1f} s, peak {gb:.2f} GB", flush=True)
    m = json.loads((report / "metrics.json").read_text())
    r = m["readmission_30d"]
    print(
        f"12-month acute admission: {m['n']:,} citizens, {m['events']:,} events; AUROC {m['auroc']:.4f} "
        f"({m['auroc_ci'][0]:.4f}-{m['auroc_ci'][1]:.4f}), oracle {m['auroc_oracle'] or float('nan'):.4f}, "
        f"share {m.get('oracle_share') or float('nan'):.3f} (goal >= 0.95); age + Charlson "
        f"{m['baselines']['age_charlson']['auroc']:.4f}; calibration slope {m['calibration_slope']:.3f} "
        f"(goal 0.9-1.1), intercept {m['calibration_intercept']:.3f}; Brier {m['brier']:.4f}; AUPRC "
        f"{m['auprc']:.4f}; precision top 1/2/5 %: "
        + ", ".join(f"{v['value']:.3f}" for v in m["precision_top"].values())
    )
    print(
        f"30-day readmission: {r['n']:,} discharges, {r['events']:,} readmitted; AUROC {r['auroc']:.4f}, "
        f"LACE "
        f"{r['auroc_lace']:.4f}, HOSPITAL {r['auroc_hospital']:.4f}; gain over LACE "
        f"{r['auroc_gain_over_lace']:+.4f} (goal >= 0.05)"
    )
    p = m["preventable_admission_12m"]
    print(f"12-month preventable admission (65+): AUROC {p['auroc']:.4f}, slope {p['calibration_slope']:.3f}")
    print(f"fairness flags: {len(m['flags'])}; goals: {m['goals']}", flush=True)
    seconds, gb, _ = _run(
        ["risk", "worklist", *common, "--model", str(model), "--reference-date", args.score_day,
         "--top", "20", "--out", str(tasks)]
    )  # fmt: skip
    lines = sum(1 for _ in tasks.open())
    print(
        f"worklist (top 20 of every GP clinic and municipality): {lines:,} Tasks, {seconds:.1f} s, "
        f"peak {gb:.2f} GB"
    )
    prepared, scored, n = _score(args.warehouse, model, date.fromisoformat(args.score_day))
    print(
        f"score every citizen of {args.score_day}: {n:,} in {scored:.1f} s (target < 60 s) after the shared "
        f"tables ({prepared:.1f} s, once per warehouse)"
    )


if __name__ == "__main__":
    main()
