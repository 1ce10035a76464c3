"""Benchmark the store's bulk load and export on PostgreSQL (issue 3).

    python bench/store_bench.py                      # Samsø (generated into bench/out/samsoe if missing)
    python bench/store_bench.py --input DIR --url postgresql://postgres@127.0.0.1:5432/test

Loads DIR into a fresh schema ``naer_bench`` of the database (dropped first), then exports it all, and
prints resources per second beside the peers' published figures. Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

from naer.store.bulk import export, load
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade

HAPI_IMPORT = 2_200  # resources/s, a vendor benchmark of HAPI FHIR's import (issue 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="NDJSON folder (default: Samsø, made if missing)")
    parser.add_argument(
        "--url",
        default=os.environ.get("NAER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL database; a schema naer_bench is made in it",
    )
    parser.add_argument("--workers", type=int, default=None, help="validating processes (default: all cores)")
    args = parser.parse_args()
    data = args.input
    if data is None:
        data = Path(__file__).parent / "out" / "samsoe"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, data))
    base = database_url(args.url)
    admin = create_engine(base)
    with admin.begin() as con:
        con.execute(text("DROP SCHEMA IF EXISTS naer_bench CASCADE"))
        con.execute(text("CREATE SCHEMA naer_bench"))
    url = in_schema(base, "naer_bench")
    upgrade(url)
    db = engine(url)
    cores = os.cpu_count() or 1

    began = time.perf_counter()
    loaded = load(db, SYSTEM, data, workers=args.workers)
    load_s = time.perf_counter() - began
    rate = loaded.total / load_s
    print(
        f"load    {loaded.total:>10,} resources in {load_s:7.1f} s: {rate:>9,.0f}/s "
        f"({rate / cores:,.0f} per core on {cores}; target >= 5,000/s; HAPI FHIR import {HAPI_IMPORT:,}/s)"
    )
    out = Path(tempfile.mkdtemp(prefix="naer-export-"))
    try:
        began = time.perf_counter()
        counts = export(db, SYSTEM, out / "export")
        export_s = time.perf_counter() - began
    finally:
        shutil.rmtree(out, ignore_errors=True)
    total = sum(counts.values())
    print(
        f"export  {total:>10,} resources in {export_s:7.1f} s: {total / export_s:>9,.0f}/s "
        f"({total / export_s / cores:,.0f} per core; target >= 20,000/s)"
    )
    db.dispose()
    with admin.begin() as con:
        con.execute(text("DROP SCHEMA naer_bench CASCADE"))


if __name__ == "__main__":
    main()
