"""Benchmark the FHIR API over HTTP: `naer serve` on PostgreSQL, driven by wrk from a second process.

    python bench/api_bench.py                  # reads by id; Samsø in schema naer_bench (loaded if empty)
    python bench/api_bench.py --mix            # the clinician mix: 70 % reads, 20 % searches, 10 % writes
    python bench/api_bench.py --export         # a whole-store $export over HTTP (kick-off, poll, manifest)
    python bench/api_bench.py --input SAMSOE --input REGION_SAMPLE --reload --mix --connections 8
    python bench/api_bench.py --access gp      # only one asker (default: off, gp and system in one run)
    python bench/api_bench.py --access off,audit,system --rounds 3   # the floor: all audited, no sign-in

The store is loaded once into the schema ``naer_bench`` of the PostgreSQL test database and kept for
later runs (``--reload`` loads it anew, every ``--input`` in turn, plus one open or closed Task per ten
citizens, owned by a municipality). wrk (Debian: apt-get install wrk) sends:
- reads: random Patients and Encounters by id;
- the mix: 70 % those reads; 10 % a citizen's encounters of the last year with their service provider
  (``Encounter?patient=P&date=geY&_include=Encounter:service-provider``); 10 % the open Tasks of a
  municipality with their patients (``Task?owner=O&status=requested,in-progress&_include=Task:patient``);
  10 % writes (a new Task, POST). The Tasks a run writes are removed before the next run, so that every
asker meets the same store (each write adds an open Task that later searches find, include and audit).
Requests per second and the 99th-percentile latency are printed beside the peers' published figures.

Access control (issue 18) is measured by running the same requests three times in one run: with access
off (``bench/fhir_app.py``, the API without sign-in or policy, which users can never run), as the GP of
the clinic with the most listed citizens (``naer serve``, a Bearer token; the reads and searches are that
clinic's citizens, so every answer is one the policy allows and evaluates) and as a system client
(``naer serve``, a ``system/*.cruds`` token). Each run prints its figures and the difference to access off.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
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


def _mix_script(url: str, reads: list[str], patients: list[str], token: str | None = None) -> str:
    """The clinician mix as a wrk script over these reads (paths) and citizens (a write's headers name the
    token itself: wrk.format with headers of its own does not add wrk's -H headers)."""
    owners = _column(url, "SELECT DISTINCT target_id FROM search_reference WHERE param = 'owner'", 1_000)
    task = (
        '{"resourceType":"Task","status":"requested","intent":"order","authoredOn":"2026-11-23",'
        '"for":{"reference":"Patient/\' .. p .. \'"},"owner":{"reference":"Organization/\' .. o .. \'"}}'
    )
    return (
        _lua_list("reads", reads)
        + _lua_list("patients", patients)
        + _lua_list("owners", owners)
        + "local json = {['Content-Type'] = 'application/fhir+json'"
        + (f", ['Authorization'] = 'Bearer {token}'" if token else "")
        + "}\n"
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


def _http_export(base: str, headers: dict[str, str]) -> tuple[float, str]:
    """System-level $export over HTTP: kick-off, poll the status URL, count what the manifest lists."""
    kick_off = urllib.request.Request(f"{base}/fhir/$export", headers={"Prefer": "respond-async", **headers})
    started = time.perf_counter()
    with urllib.request.urlopen(kick_off) as answer:
        status_url = answer.headers["Content-Location"]
    while True:
        with urllib.request.urlopen(urllib.request.Request(status_url, headers=headers)) as answer:
            if answer.status == 200:
                manifest = orjson.loads(answer.read())
                break
        time.sleep(0.5)
    took = time.perf_counter() - started
    total = sum(int(o["count"]) for o in manifest["output"])
    urllib.request.urlopen(urllib.request.Request(status_url, method="DELETE", headers=headers)).close()
    cores = os.cpu_count() or 1
    text_ = (
        f"$export over HTTP: {total:,} resources in {took:.1f} s: {total / took:,.0f}/s "
        f"({total / took / cores:,.0f} per core on {cores}; target >= 20,000/s)"
    )
    return total / took, text_


# The GP clinic with the most listed citizens, and one of its GPs' PractitionerRole.
_CLINIC = (
    "SELECT target_id FROM search_reference WHERE resource_type = 'Patient' "
    "AND param = 'general-practitioner' GROUP BY target_id ORDER BY count(*) DESC, target_id LIMIT 1"
)
_GP_ROLE = (
    "SELECT r.id FROM search_reference r WHERE r.resource_type = 'PractitionerRole' "
    "AND r.param = 'organization' AND r.target_id = :clinic ORDER BY r.id LIMIT 1"
)
_PRACTITIONER = (
    "SELECT target_id FROM search_reference WHERE resource_type = 'PractitionerRole' "
    "AND param = 'practitioner' AND id = :role"
)
# The clinic's citizens, and the reads among their records.
_LISTED = (
    "SELECT id FROM search_reference WHERE resource_type = 'Patient' "
    "AND param = 'general-practitioner' AND target_id = :clinic"
)
_LISTED_READS = (
    "SELECT 'Patient/' || id FROM search_reference WHERE resource_type = 'Patient' "
    "AND param = 'general-practitioner' AND target_id = :clinic "
    "UNION ALL SELECT 'Encounter/' || e.id FROM search_reference e JOIN search_reference g "
    "ON g.resource_type = 'Patient' AND g.param = 'general-practitioner' AND g.target_id = :clinic "
    "AND e.target_type = 'Patient' AND e.target_id = g.id "
    "WHERE e.resource_type = 'Encounter' AND e.param = 'patient'"
)


def _askers(url: str) -> tuple[str, dict[str, str]]:
    """Accounts for the GP and the system client in the bench store; the clinic and a token for each."""
    from naer.access import accounts, tokens

    db = engine(url)
    with db.connect() as con:
        clinic = con.execute(text(_CLINIC)).scalar_one()
        role = con.execute(text(_GP_ROLE), {"clinic": clinic}).scalar_one_or_none()
        practitioner = con.execute(text(_PRACTITIONER), {"role": role}).scalar_one_or_none() if role else None
    for name, kind, scopes in (("bench-gp", "gp", None), ("bench-system", "system", "system/*.cruds")):
        if accounts.get(db, name) is None:
            accounts.add(
                db, name, f"Benchmark {kind}", kind, None,
                practitioner=practitioner if kind == "gp" else None,
                practitioner_role=role if kind == "gp" else None,
                organization=clinic if kind == "gp" else None, scopes=scopes,
            )  # fmt: skip
    held = {name: accounts.get(db, name) for name in ("bench-gp", "bench-system")}
    made = {name: tokens.issue(name, account.scopes, 120) for name, account in held.items() if account}
    return str(clinic), {"gp": made["bench-gp"], "system": made["bench-system"]}


def _forget_writes(url: str) -> int:
    """Remove the Tasks earlier runs of the mix wrote (server-assigned ids; the bench's own are
    ``bench-task-N``), so that every asker's run starts from the same store: each write adds an open Task
    that the next run's searches for open Tasks find, include and audit."""
    from naer.store.tables import INDEX_TABLES, history, resource_patient, resources

    written = "resource_type = 'Task' AND id NOT LIKE 'bench-task-%'"
    with engine(url).begin() as con:
        gone = con.execute(text(f"DELETE FROM {resources.name} WHERE {written}")).rowcount
        for table in [history, resource_patient, *INDEX_TABLES.values()]:
            con.execute(text(f"DELETE FROM {table.name} WHERE {written}"))
    return int(gone or 0)


def _analyze(url: str) -> None:
    """VACUUM ANALYZE: the rows the last run wrote and _forget_writes removed leave dead tuples that the
    next run would otherwise scan (autovacuum comes in its own time), and fresh statistics."""
    with engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        con.execute(text("VACUUM ANALYZE"))


def _server(access: str, url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """``naer serve`` (access on), or the API with access off (bench/fhir_app.py) on the same uvicorn."""
    if access in ("off", "audit"):
        module = "fhir_app:app" if access == "off" else "fhir_app_audited:app"
        command = [
            sys.executable, "-m", "uvicorn", module, "--app-dir", str(Path(__file__).parent),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    else:
        naer = Path(sys.executable).with_name("naer")
        command = [str(naer), "serve", "--url", url, "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/fhir/metadata", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"the server ({access}) did not start: {server.communicate()[1].decode()[-2000:]}")


def _wrk(script: Path, port: int, token: str | None, connections: int, seconds: int) -> str:
    header = ["-H", f"Authorization: Bearer {token}"] if token else []
    target = f"http://127.0.0.1:{port}"
    subprocess.run(["wrk", "-t1", "-c4", "-d3s", *header, "-s", str(script), target], capture_output=True)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *header, "-s", str(script), target],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _figures(out: str) -> tuple[float, float, int]:
    """Requests per second, p99 in ms and the count of non-2xx/3xx answers from wrk's report."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p99_ms, int(errors.group(1)) if errors else 0


def _script(url: str, clinic: str, mix: bool, token: str | None = None) -> str:
    with engine(url).connect() as con:
        listed = con.execute(text(_LISTED), {"clinic": clinic}).scalars().all()
        reads = con.execute(text(_LISTED_READS), {"clinic": clinic}).scalars().all()
    rng = random.Random(1)
    paths = [f"/fhir/{p}" for p in rng.sample(list(reads), min(20_000, len(reads)))]
    if not mix:
        return _lua_list("paths", paths) + (
            "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
        )
    patients = rng.sample(list(listed), min(20_000, len(listed)))
    return _mix_script(url, paths, patients, token)


def _askers_of(value: str) -> str:
    """--access: all, or askers separated by commas (off, audit, gp, system)."""
    known = {"off", "audit", "gp", "system"}
    if value != "all" and not set(value.split(",")) <= known:
        raise argparse.ArgumentTypeError(f"{value!r}: choose all or some of {', '.join(sorted(known))}")
    return value


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
        "--access",
        type=_askers_of,
        default="all",
        help="who asks: access off, every access audited with no sign-in and no policy (the floor, "
        "bench/fhir_app_audited.py), a GP's token, a system client's token, or off, gp and system in turn "
        "(default)",
    )
    parser.add_argument(
        "--url", default=os.environ.get("NAER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes")
    parser.add_argument("--reload", action="store_true", help="load the store anew")
    parser.add_argument(
        "--rounds", type=int, default=1, help="askers in turn this many times; the median is compared"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.export:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="naer-wrk-"))
    # The server and this process share a data folder and a signing key (the tokens are Nær's own).
    os.environ["NAER_DATA_DIR"] = str(tmp / "data")
    os.environ["NAER_SIGNING_KEY"] = str(tmp / "signing-key.json")
    inputs = args.input
    if not inputs:
        data = Path(__file__).parent / "out" / "samsoe"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, data))
        inputs = [data]
    url = _store(database_url(args.url), inputs, args.reload)
    os.environ["NAER_DATABASE_URL"] = url
    clinic, tokens = _askers(url)
    askers = ["off", "gp", "system"] if args.access == "all" else args.access.split(",")
    cores = os.cpu_count() or 1
    what, target, peer = (
        ("clinician mix", "target >= 300/s, p99 < 100 ms", MEDPLUM_MIX_PER_VCPU)
        if args.mix
        else ("read by id", "target >= 1,000/s, p99 < 20 ms", MEDPLUM_READS_PER_VCPU)
    )
    script = tmp / "requests.lua"
    script.write_text(_script(url, clinic, args.mix))
    print(f"{'$export' if args.export else what}: the citizens of {clinic} and their encounters", flush=True)
    results: dict[str, list[tuple[float, float, int]]] = {}
    try:
        for asker in [a for _ in range(max(1, args.rounds)) for a in askers]:
            if args.mix:
                _forget_writes(url)  # every asker meets the same store
            _analyze(url)  # no dead rows and fresh statistics for every run, as autovacuum would keep
            script.write_text(_script(url, clinic, args.mix, tokens.get(asker)))
            port = _free_port()
            server = _server(asker, url, port, args.workers)
            try:
                token = tokens.get(asker)
                if args.export:
                    rate, shown = _http_export(
                        f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"} if token else {}
                    )
                    results.setdefault(asker, []).append((rate, 0.0, 0))
                    print(f"access {asker:<6} {shown}", flush=True)
                    continue
                out = _wrk(script, port, token, args.connections, args.seconds)
            finally:
                server.terminate()  # it writes the audit entries it holds before it stops
                try:
                    server.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            rate, p99_ms, errors = _figures(out)
            results.setdefault(asker, []).append((rate, p99_ms, errors))
            print(out if len(askers) == 1 and args.rounds == 1 else "", end="")
            print(
                f"access {asker:<6} {what}: {rate:,.0f} requests/s, p99 {p99_ms:.1f} ms "
                f"({rate / cores:,.0f} per core on {cores}, server, database and wrk sharing them; {target}; "
                f"Medplum {peer:,.0f}/s per vCPU){f'; NON-2xx: {errors}' if errors else ''}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {a: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
               for a, runs in results.items()}  # fmt: skip
    if args.rounds > 1:
        for asker, (rate, p99_ms) in medians.items():
            print(f"median of {args.rounds}: access {asker:<6} {rate:,.0f}/s, p99 {p99_ms:.1f} ms")
    if "off" in medians and len(medians) > 1:
        base_rate, base_p99 = medians["off"]
        for asker, (rate, p99_ms) in medians.items():
            if asker != "off":
                print(
                    f"{asker} against access off: {rate / base_rate - 1:+.1%} requests/s"
                    + ("" if args.export else f", p99 {p99_ms - base_p99:+.1f} ms")
                    + " (issue 18: within 20 %)"
                )


if __name__ == "__main__":
    main()
