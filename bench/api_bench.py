"""Benchmark the FHIR API over HTTP: `naer serve` on PostgreSQL, driven by wrk from a second process.

    python bench/api_bench.py                  # reads by id; Samsø in schema naer_bench (loaded if empty)
    python bench/api_bench.py --mix            # the clinician mix: 70 % reads, 20 % searches, 10 % writes
    python bench/api_bench.py --export         # a whole-store $export over HTTP (kick-off, poll, manifest)
    python bench/api_bench.py --input SAMSOE --input REGION_SAMPLE --reload --mix --connections 8

The store is loaded once into the schema ``naer_bench`` of the PostgreSQL test database and kept for
later runs (``--reload`` loads it anew, every ``--input`` in turn, plus one open or closed Task per ten
citizens, owned by a municipality). wrk (Debian: apt-get install wrk) sends:
- reads: random Patients and Encounters by id;
- the mix: 70 % those reads; 10 % a citizen's encounters of the last year with their service provider
  (``Encounter?patient=P&date=geY&_include=Encounter:service-provider``); 10 % the open Tasks of a
  municipality with their patients (``Task?owner=O&status=requested,in-progress&_include=Task:patient``);
  10 % writes (a new Task, POST).
Requests per second and the 99th-percentile latency are printed beside the peers' published figures.
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

import orjson
from sqlalchemy import create_engine, text

from naer.store.bulk import load
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade

MEDPLUM_READS_PER_VCPU = 20_797 / 60  # 15 servers x 4 vCPU (issue 3)
MEDPLUM_MIX_PER_VCPU = 6_738 / 60
SINCE = "2024-01-01"  # "the last year" of a data set that ends 2024-12-31


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(base: str, inputs: list[Path], reload: bool) -> str:
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
        for data in inputs:
            print(f"loading {data} into naer_bench ...", flush=True)
            started = time.perf_counter()
            result = load(engine(url), SYSTEM, data)
            took = time.perf_counter() - started
            print(f"  {result.total:,} resources in {took:.0f} s ({result.total / took:,.0f}/s)", flush=True)
        _load_tasks(url)
    with engine(url).connect() as con:
        held = con.execute(text("SELECT count(*) FROM resources")).scalar_one()
    print(f"the store holds {held:,} resources", flush=True)
    return url


def _load_tasks(url: str) -> None:
    """One Task per ten citizens, owned by a municipality's organisation, a third of them still open."""
    with engine(url).connect() as con:
        patients = (
            con.execute(text("SELECT id FROM resources WHERE resource_type = 'Patient'")).scalars().all()
        )
        owners = con.execute(text(_OWNERS)).scalars().all()
    rng = random.Random(2)
    statuses = ["requested", "in-progress", "completed", "completed", "completed", "cancelled"]
    tmp = Path(tempfile.mkdtemp(prefix="naer-tasks-"))
    try:
        with (tmp / "Task.ndjson").open("w") as out:
            for n, patient in enumerate(rng.sample(list(patients), len(patients) // 10)):
                task = {
                    "resourceType": "Task",
                    "id": f"bench-task-{n}",
                    "status": rng.choice(statuses),
                    "intent": "order",
                    "for": {"reference": f"Patient/{patient}"},
                    "owner": {"reference": f"Organization/{rng.choice(owners)}"},
                    "authoredOn": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                }
                out.write(orjson.dumps(task).decode() + "\n")
        result = load(engine(url), SYSTEM, tmp)
        print(f"  {result.total:,} Tasks for {len(owners)} municipal organisations", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# The municipalities' organisations (home care, acute teams, acute beds ...): the sector extension.
_OWNERS = (
    "SELECT id FROM resources WHERE resource_type = 'Organization' "
    'AND content LIKE \'%/sector","code":"municipality"%\''
)


def _column(url: str, sql: str, n: int) -> list[str]:
    with engine(url).connect() as con:
        found = [str(v) for v in con.execute(text(sql)).scalars().all()]
    random.Random(1).shuffle(found)
    return found[:n]


def _lua_list(name: str, values: list[str]) -> str:
    return f"local {name} = {{{','.join(orjson.dumps(v).decode() for v in values)}}}\n"


def _mix_script(url: str) -> str:
    """The clinician mix as a wrk script."""
    reads = [f"/fhir/{p}" for p in _column(url, _READS, 20_000)]
    patients = _column(url, "SELECT id FROM resources WHERE resource_type = 'Patient'", 20_000)
    owners = _column(url, "SELECT DISTINCT target_id FROM search_reference WHERE param = 'owner'", 1_000)
    task = (
        '{"resourceType":"Task","status":"requested","intent":"order","authoredOn":"2026-11-23",'
        '"for":{"reference":"Patient/\' .. p .. \'"},"owner":{"reference":"Organization/\' .. o .. \'"}}'
    )
    return (
        _lua_list("reads", reads)
        + _lua_list("patients", patients)
        + _lua_list("owners", owners)
        + "local json = {['Content-Type'] = 'application/fhir+json'}\n"
        + "request = function()\n"
        + "  local r = math.random(100)\n"
        + "  if r <= 70 then return wrk.format('GET', reads[math.random(#reads)]) end\n"
        + "  local p = patients[math.random(#patients)]\n"
        + "  local o = owners[math.random(#owners)]\n"
        + "  if r <= 80 then return wrk.format('GET', '/fhir/Encounter?patient=' .. p .. "
        + f"'&date=ge{SINCE}&_include=Encounter:service-provider') end\n"
        + "  if r <= 90 then return wrk.format('GET', '/fhir/Task?owner=Organization/' .. o .. "
        + "'&status=requested,in-progress&_include=Task:patient') end\n"
        + f"  return wrk.format('POST', '/fhir/Task', json, '{task}')\n"
        + "end\n"
    )


_READS = (
    "SELECT resource_type || '/' || id FROM resources "
    "WHERE resource_type IN ('Patient', 'Encounter') AND NOT deleted"
)


def _http_export(base: str) -> None:
    """System-level $export over HTTP: kick-off, poll the status URL, count what the manifest lists."""
    kick_off = urllib.request.Request(f"{base}/fhir/$export", headers={"Prefer": "respond-async"})
    started = time.perf_counter()
    with urllib.request.urlopen(kick_off) as answer:
        status_url = answer.headers["Content-Location"]
    while True:
        with urllib.request.urlopen(status_url) as answer:
            if answer.status == 200:
                manifest = orjson.loads(answer.read())
                break
        time.sleep(0.5)
    took = time.perf_counter() - started
    total = sum(int(o["count"]) for o in manifest["output"])
    urllib.request.urlopen(urllib.request.Request(status_url, method="DELETE")).close()
    cores = os.cpu_count() or 1
    print(
        f"$export over HTTP: {total:,} resources in {took:.1f} s: {total / took:,.0f}/s "
        f"({total / took / cores:,.0f} per core on {cores}; target >= 20,000/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        type=Path,
        action="append",
        help="NDJSON folder, repeatable (default: Samsø, made if missing)",
    )
    parser.add_argument("--mix", action="store_true", help="the clinician mix instead of reads by id")
    parser.add_argument("--export", action="store_true", help="time a system-level $export over HTTP instead")
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
    inputs = args.input
    if not inputs:
        data = Path(__file__).parent / "out" / "samsoe"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, data))
        inputs = [data]
    url = _store(database_url(args.url), inputs, args.reload)
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
        if args.export:
            _http_export(f"http://127.0.0.1:{port}")
            return
        script = tmp / "requests.lua"
        if args.mix:
            script.write_text(_mix_script(url))
        else:
            script.write_text(
                _lua_list("paths", [f"/fhir/{p}" for p in _column(url, _READS, 20_000)])
                + "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
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
    what, target, peer = (
        ("clinician mix", "target >= 300/s, p99 < 100 ms", MEDPLUM_MIX_PER_VCPU)
        if args.mix
        else ("read by id", "target >= 1,000/s, p99 < 20 ms", MEDPLUM_READS_PER_VCPU)
    )
    print(
        f"{what}: {rate:,.0f} requests/s, p99 {p99_ms:.1f} ms ({rate / cores:,.0f} per core on {cores}, "
        f"server, database and wrk sharing them; {target}; Medplum {peer:,.0f}/s per vCPU)"
        f"{'; NON-2xx: ' + errors.group(1) if errors else ''}"
    )


if __name__ == "__main__":
    main()
