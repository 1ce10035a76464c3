"""Benchmark reads by id over HTTP: `naer serve` on PostgreSQL, driven by wrk from a second process.

    python bench/api_bench.py                  # Samsø in schema naer_bench (loaded if empty), 20 s of wrk
    python bench/api_bench.py --input DIR --seconds 30 --connections 16

The store is loaded once into the schema ``naer_bench`` of the PostgreSQL test database and kept for
later runs (``--reload`` loads it anew). wrk (Debian: apt-get install wrk) requests random Patients and
Encounters by id; its requests per second and 99th-percentile latency are printed beside the peers'.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

from naer.store.bulk import load
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade

MEDPLUM_READS_PER_VCPU = 20_797 / 60  # 15 servers x 4 vCPU (issue 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(base: str, data: Path, reload: bool) -> str:
    admin = create_engine(base)
    with admin.begin() as con:
        if reload:
            con.execute(text("DROP SCHEMA IF EXISTS naer_bench CASCADE"))
        con.execute(text("CREATE SCHEMA IF NOT EXISTS naer_bench"))
    url = in_schema(base, "naer_bench")
    upgrade(url)
    with engine(url).connect() as con:
        held = con.execute(text("SELECT count(*) FROM resources")).scalar_one()
    if not held:
        print(f"loading {data} into naer_bench ...", flush=True)
        load(engine(url), SYSTEM, data)
    return url


def _ids(url: str, n: int) -> list[str]:
    with engine(url).connect() as con:
        rows = con.execute(
            text(
                "SELECT resource_type || '/' || id FROM resources "
                "WHERE resource_type IN ('Patient', 'Encounter') AND NOT deleted"
            )
        ).all()
    paths = [f"/fhir/{r[0]}" for r in rows]
    random.Random(1).shuffle(paths)
    return paths[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="NDJSON folder (default: Samsø, made if missing)")
    parser.add_argument(
        "--url", default=os.environ.get("NAER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes")
    parser.add_argument("--reload", action="store_true", help="load the store anew")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    data = args.input
    if data is None:
        data = Path(__file__).parent / "out" / "samsoe"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, data))
    url = _store(database_url(args.url), data, args.reload)
    paths = _ids(url, 20_000)
    port = _free_port()
    naer = Path(sys.executable).with_name("naer")
    server = subprocess.Popen(
        [str(naer), "serve", "--url", url, "--port", str(port), "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tmp = Path(tempfile.mkdtemp(prefix="naer-wrk-"))
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/fhir/metadata", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        script = tmp / "read.lua"
        listing = ",".join(f'"{p}"' for p in paths)
        script.write_text(
            f"local paths = {{{listing}}}\n"
            "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
        )
        subprocess.run(
            ["wrk", "-t1", "-c4", "-d3s", "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True
        )  # warm-up
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cores = os.cpu_count() or 1
    print(out)
    print(
        f"read by id: {rate:,.0f} requests/s, p99 {p99_ms:.1f} ms ({rate / cores:,.0f} per core on {cores}, "
        f"server, database and wrk sharing them; target >= 1,000/s, p99 < 20 ms; Medplum "
        f"{MEDPLUM_READS_PER_VCPU:,.0f}/s per vCPU){'; NON-2xx: ' + errors.group(1) if errors else ''}"
    )


if __name__ == "__main__":
    main()
