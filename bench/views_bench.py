"""Benchmark SQL on FHIR views: Nær's compiled DuckDB path against a bare scan and a Python interpreter.

    python bench/views_bench.py --input DATA_DIR       # e.g. naer synth --area region-midt --scale 0.15
    python bench/views_bench.py                        # generates that set into bench/out/r15 when missing

For the encounter and patient views it prints (issue 4), each timing the best of ``--repeat`` runs (the
machine is shared and the page cache makes single runs vary by 2x):
- the view evaluated: every column of every row computed and consumed inside DuckDB (``count`` of each
  column), against DuckDB's bare scan of the same NDJSON files (``read_ndjson`` selecting one field, its
  ``count``): the ratio is what the view costs over parsing the JSON at all (target: within 3x);
- the same two written to Parquet, and the ratio of those: this adds the writer's cost of 13 (or 9) columns
  against 1, so it is reported beside the other, not instead of it;
- rows per second of the view written to Parquet;
- the same view evaluated by fhirpathpy, a plain Python FHIRPath interpreter, over already parsed JSON on a
  sample of resources, per resource, and Nær's speed-up per resource (target: at least 50x).
Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import fhirpathpy
import orjson

from naer.views.definition import View, load_view
from naer.views.run import compiled_query, connect
from naer.views.source import files_for

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "naer" / "views" / "library"
_REF_KEY = re.compile(r"\.getReferenceKey\((\w*)\)")


def _timed(statement: str, repeat: int) -> tuple[float, int]:
    """Best time of ``repeat`` runs of a statement whose first result value is a row count."""
    best, rows = float("inf"), 0
    for _ in range(repeat):
        con = connect()
        began = time.perf_counter()
        row = con.execute(statement).fetchone()
        best = min(best, time.perf_counter() - began)
        con.close()
        rows = int(row[0]) if row else 0
    return best, rows


def _evaluated(query: str, columns: list[str]) -> str:
    """Every output column computed and consumed, nothing written."""
    counts = ", ".join(f'count("{c}")' for c in columns)
    return f"SELECT count(*), {counts} FROM ({query})"


def _interpreter(view: View) -> list[tuple[str, Any, str | None]]:
    """The view's columns as fhirpathpy functions. fhirpathpy lacks the SQL on FHIR key functions, so
    getResourceKey() becomes ``id`` and getReferenceKey(T) reads ``reference`` and splits it in Python."""
    out = []
    for select in view.root.selects:
        for col in select.columns:
            path = col.path.replace("getResourceKey()", "id")
            m = _REF_KEY.search(path)
            wanted = m.group(1) if m else None
            path = _REF_KEY.sub(".reference", path)
            out.append((col.name, fhirpathpy.compile(path), wanted if m else None))
    return out


def _ref_key(value: str, wanted: str) -> str | None:
    kind, _, key = value.rpartition("/")
    return key if not wanted or kind.endswith(wanted) else None


def _python_rows(view: View, resources: list[dict[str, Any]]) -> float:
    columns = _interpreter(view)
    env = {c["name"]: next(v for k, v in c.items() if k.startswith("value")) for c in view.constants}
    began = time.perf_counter()
    for resource in resources:
        row = {}
        for name, fn, wanted in columns:
            found = fn(resource, env)
            value = found[0] if found else None
            if wanted is not None and isinstance(value, str):
                value = _ref_key(value, wanted)
            row[name] = value
    return time.perf_counter() - began


def _sample(files: list[Path], n: int) -> list[dict[str, Any]]:
    out = []
    for path in files:
        with path.open("rb") as fh:
            for line in itertools.islice(fh, n - len(out)):
                out.append(orjson.loads(line))
        if len(out) >= n:
            break
    return out


def bench_view(name: str, data: Path, sample: int, repeat: int) -> dict[str, float]:
    view = load_view(LIBRARY / f"{name}.json")
    compiled, query, files = compiled_query(view, data)
    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    scan = f"SELECT id FROM read_ndjson({listing})"
    eval_s, rows = _timed(_evaluated(query, [c.name for c in compiled.columns]), repeat)
    scan_s, scan_rows = _timed(_evaluated(scan, ["id"]), repeat)
    with tempfile.TemporaryDirectory(dir=data.parent) as tmp:
        out = Path(tmp) / "out.parquet"
        view_s, _ = _timed(f"COPY ({query}) TO '{out}' (FORMAT PARQUET)", repeat)
        scan_file_s, _ = _timed(f"COPY ({scan}) TO '{out}' (FORMAT PARQUET)", repeat)
    resources = _sample(files, sample)
    python_s = _python_rows(view, resources)
    per_view = view_s / max(scan_rows, 1)
    per_python = python_s / len(resources)
    size = sum(f.stat().st_size for f in files)
    print(
        f"{name:10s} {scan_rows:>12,} resources ({size / 1e9:.2f} GB) -> {rows:,} rows, "
        f"best of {repeat}\n"
        f"  view evaluated       {eval_s:8.2f} s  {rows / eval_s:>12,.0f} rows/s\n"
        f"  bare scan (id only)  {scan_s:8.2f} s  {scan_rows / scan_s:>12,.0f} rows/s   view/scan = "
        f"{eval_s / scan_s:.2f}x (target <= 3x)\n"
        f"  view to Parquet      {view_s:8.2f} s  {rows / view_s:>12,.0f} rows/s\n"
        f"  scan to Parquet      {scan_file_s:8.2f} s  {scan_rows / scan_file_s:>12,.0f} rows/s   "
        f"view/scan = {view_s / scan_file_s:.2f}x ({len(compiled.columns)} columns written against 1)\n"
        f"  fhirpathpy           {python_s:8.2f} s for {len(resources):,} parsed resources: "
        f"{len(resources) / python_s:,.0f}/s; Nær (to Parquet) is {per_python / per_view:,.0f}x faster per "
        "resource (target >= 50x)"
    )
    return {"rows": rows, "view_s": view_s, "eval_s": eval_s, "scan_s": scan_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="data folder (default: bench/out/r15, made if missing)")
    parser.add_argument("--sample", type=int, default=20_000, help="resources for the Python interpreter")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each timing; the best counts")
    args = parser.parse_args()
    data = args.input
    if data is None:
        data = Path(__file__).parent / "out" / "r15"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            print(f"generating Region Midtjylland at 15 % (about 205,000 citizens) into {data} ...")
            synthesize(SynthRequest("region-midt", date(2015, 1, 1), date(2024, 12, 31), 1, data, scale=0.15))
    for name in ("patient", "encounter"):
        files, _ = files_for(data, "Patient" if name == "patient" else "Encounter")
        if not files:
            raise SystemExit(f"no {name} files in {data}")
        bench_view(name, data, args.sample, args.repeat)


if __name__ == "__main__":
    main()
