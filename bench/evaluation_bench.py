"""Benchmark the evaluation of initiatives (issue 22): its speed on the whole region, and how often its
intervals hold an effect planted in synthetic populations.

    python bench/evaluation_bench.py speed                 # bench/out/region(.duckdb), made when missing
    python bench/evaluation_bench.py speed --warehouse W.duckdb --runs 3
    python bench/evaluation_bench.py coverage --runs 40    # 40 seeds, planted and not
    python bench/evaluation_bench.py panels --runs 100     # the designs alone on simulated panels

``speed`` runs ``naer evaluate samsoe-2019`` as a user does, in a child process (wall time and the child's
peak memory), on the views warehouse of the whole Region Midtjylland (the indicators bench's: made with
``naer synth --area region-midt --gzip`` and ``naer views run`` when missing, not timed). Target: under
60 s for all named indicators by every design.

``coverage`` generates the region at 1 % (every municipality at least 600 citizens, Samsø in full,
2015-2021) once per seed with the Samsø trial's effect planted (``naer synth --initiative``), measures the
truth (the same seed with and without), evaluates, and counts how often the trusted design's 95 %
interval holds the truth. The same data give the runs without an effect: the trial's months in a
municipality nothing was planted in (a placebo initiative, one per seed), where the truth is zero, and
the count of flagged effects (an interval without zero) is the false-positive rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from indicators_bench import OUT, _ensure_warehouse, _run
from naer.evaluation.register import find


def speed(args: argparse.Namespace) -> None:
    _ensure_warehouse(args.warehouse, args.data)
    seconds, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="naer-bench-") as tmp:
        for run in range(args.runs):
            took, peak, out = _run(
                ["evaluate", args.initiative, "--warehouse", str(args.warehouse), "--out", f"{tmp}/r{run}"]
            )
            seconds.append(took)
            peaks.append(peak)
            print(f"  run {run + 1}: {took:.1f} s, peak {peak:.2f} GB", flush=True)
        print(out)
    print(
        f"naer evaluate {args.initiative} on {args.warehouse.name}: best {min(seconds):.1f} s, median "
        f"{statistics.median(seconds):.1f} s, peak memory {max(peaks):.2f} GB (target: under 60 s)"
    )


def coverage(args: argparse.Namespace) -> None:
    from naer.evaluation.coverage import check_method

    began = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    found = check_method(
        find(args.initiative), seeds, args.placebo, workers=args.workers, folder=args.tmp,
        on_seed=lambda seed: print(f"  seed {seed}: done ({time.perf_counter() - began:.0f} s)", flush=True),
    )  # fmt: skip
    print(f"\n{args.runs} seeds ({seeds[0]} to {seeds[-1]}); the trusted design's 95 % interval")
    print(f"{'indicator':<22}{'planted: held':>16}{'no effect: flagged':>20}{'none trusted':>14}")
    rows = [(name, found.planted[name], found.none[name]) for name in found.planted]
    rows.append(("all", found.total("planted"), found.total("none")))
    for name, p, n in rows:
        print(
            f"{name:<22}{p.held:>5}/{p.runs:<3} {_share(p.held, p.runs):>6}"
            f"{n.flagged:>9}/{n.runs:<3} {_share(n.flagged, n.runs):>6}"
            f"{p.none_trusted + n.none_trusted:>10}"
        )
    print(f"({time.perf_counter() - began:.0f} s)")


def panels(args: argparse.Namespace) -> None:
    from naer.evaluation.coverage import check_designs

    began = time.perf_counter()
    for design, (held, flagged) in check_designs(args.runs).items():
        print(
            f"{design:<20} held {held}/{args.runs} ({_share(held, args.runs)}), "
            f"flagged {flagged}/{args.runs} ({_share(flagged, args.runs)})"
        )
    print(f"({time.perf_counter() - began:.0f} s; an effect of 6 per 1,000 planted, and none)")


def _share(a: int, b: int) -> str:
    return f"{a / b * 100:.0f} %" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--warehouse", type=Path, default=OUT / "region.duckdb")
    s.add_argument("--data", type=Path, default=OUT / "region", help="NDJSON to build a missing warehouse")
    s.add_argument("--initiative", default="samsoe-2019")
    s.add_argument("--runs", type=int, default=2)
    c = sub.add_parser("coverage")
    c.add_argument("--runs", type=int, default=40, help="seeds")
    c.add_argument("--initiative", default="samsoe-2019")
    c.add_argument("--first-seed", type=int, default=101)
    c.add_argument("--placebo", default="0706", help="the municipality of the no-effect runs (Syddjurs)")
    c.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    c.add_argument("--tmp", type=Path, default=None)
    p = sub.add_parser("panels")
    p.add_argument("--runs", type=int, default=100, help="simulated panels, with an effect and without")
    args = parser.parse_args()
    {"speed": speed, "coverage": coverage, "panels": panels}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
