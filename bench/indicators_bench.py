"""Benchmark the indicators and the dashboard on the whole of Region Midtjylland (issue 5).

    python bench/indicators_bench.py                       # bench/out/region(.duckdb), made when missing
    python bench/indicators_bench.py --warehouse W.duckdb  # any views warehouse
    python bench/indicators_bench.py --runs 3

It runs `naer indicators` as a user does, in a child process (wall time and the child's peak memory):
1. all indicators by municipality and year (the command's default), from the views' tables to the result
   table (target: under 60 s, peak memory under 6 GB);
2. all indicators by every grouping and every period: the dashboard's results file;
and then times dashboard pages (overview, indicator pages, HTMX panels) over that file in-process, each
page many times (target: under 300 ms). Figures go to docs/performance.md.

The warehouse is built from the NDJSON with `naer views run` when missing (not part of the timing: the
target is "from views to result tables"); the data set itself with `naer synth --area region-midt --gzip`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
NAER = Path(sys.executable).with_name("naer")
PAGES = [
    "/",
    "/indicators/preventable-65plus",
    "/indicators/preventable-65plus/panel?by=gp_clinic&period=year",
    "/indicators/readmission-30d/panel?by=municipality&period=month&unit=0741",
    "/indicators/acute-admissions?by=age_band&period=quarter",
    "/indicators/bed-days/panel?by=education&period=year&fmt=da",
    "/indicators/gp-followup-14d/panel?by=gp_clinic&period=month",
]


def _run(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak memory (GB, the child's own maximum resident set) of one `naer` process."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [str(NAER), *args], stdout=out, stderr=err, env={**os.environ, "COLUMNS": "160"}
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"naer {' '.join(args)} failed:\n{err.read().decode()}")
        return seconds, usage.ru_maxrss / 1024 / 1024, out.read().decode()


def _ensure_warehouse(warehouse: Path, data: Path) -> None:
    if warehouse.is_file():
        return
    if not (data / "manifest.json").is_file():
        print(f"generating the whole region into {data} (gzip, ~3.5 GB, ~10 min) ...", flush=True)
        subprocess.run(
            [
                str(NAER),
                "synth",
                "--area",
                "region-midt",
                "--scale",
                "1",
                "--seed",
                "1",
                "--gzip",
                "--out",
                str(data),
            ],
            check=True,
        )
    print(f"running the views into {warehouse} ...", flush=True)
    library = ROOT / "src" / "naer" / "views" / "library"
    subprocess.run(
        [str(NAER), "views", "run", str(library), "--input", str(data), "--warehouse", str(warehouse)],
        check=True,
    )


def _pages(results: Path, repeat: int) -> list[tuple[str, float, float]]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from naer.web.dashboard import add_dashboard

    app = FastAPI()
    began = time.perf_counter()
    add_dashboard(app, results)
    print(f"  dashboard start (reads the results once): {time.perf_counter() - began:.2f} s")
    out = []
    with TestClient(app) as client:
        for url in PAGES:
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t)
                assert response.status_code == 200, (url, response.status_code)
            times.sort()
            out.append((url, statistics.median(times), times[int(0.95 * (len(times) - 1))]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", type=Path, default=OUT / "region.duckdb")
    parser.add_argument(
        "--data", type=Path, default=OUT / "region", help="NDJSON to build a missing warehouse"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs of each command (best and all are shown)")
    parser.add_argument("--pages", type=int, default=30, help="requests of each dashboard page")
    args = parser.parse_args()
    _ensure_warehouse(args.warehouse, args.data)
    with tempfile.TemporaryDirectory(prefix="naer-bench-") as tmp:
        results = Path(tmp) / "indicators.parquet"
        jobs = [
            ("all indicators by municipality and year", ["--by", "municipality", "--period", "year"]),
            (
                "all indicators by every grouping and period",
                ["--by", "every", "--period", "every", "--out", str(results)],
            ),
        ]
        for label, extra in jobs:
            runs = [
                _run(["indicators", "--warehouse", str(args.warehouse), *extra]) for _ in range(args.runs)
            ]
            seconds = [r[0] for r in runs]
            rows = runs[-1][2].strip().splitlines()[-1]
            print(
                f"{label}: best {min(seconds):.1f} s (runs: {', '.join(f'{s:.1f}' for s in seconds)}), "
                f"peak memory {max(r[1] for r in runs):.2f} GB"
            )
            print(f"  {rows}")
        print(
            f"dashboard pages over {results.stat().st_size / 1e6:.1f} MB of results, "
            f"{args.pages} requests each:"
        )
        for url, median, p95 in _pages(results, args.pages):
            print(f"  {url}: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
