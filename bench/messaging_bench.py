"""Benchmark the MedCom inbox: receive, validate, apply and acknowledge, on PostgreSQL (issue 21: at least
200 messages a second on this machine).

    python bench/messaging_bench.py                         # 3,000 citizens, 4,000 messages, 1 and 2 workers
    python bench/messaging_bench.py --citizens 3000 --messages 4000 --workers 1 2 --reload

The store is the schema ``naer_messaging_bench`` of the PostgreSQL test database (NAER_TEST_DATABASE_URL):
a hospital's medical department, Samsø's home care, and ``--citizens`` citizens of Samsø with CPR
numbers. The messages are a stream as a hospital sends it: for each stay an admission (STIN), a leave and
its end (STOR, SLOR) and the discharge (SLHJ), one in four a correction (RE_STIN) too, and for every
second stay a CareCommunication and its reply. Each is a distinct message (its own ids, citizen and
times), serialised to JSON before the clock starts. Each round starts from an empty inbox and receives
every message once through ``naer.messaging.receive.receive`` (parse, validate against MedCom's profiles,
find the unit and the citizen, apply in one transaction with the acknowledgement, build the
acknowledgement), split over ``--workers`` processes. It prints messages per second for each count of
workers, and checks that every message was applied and acknowledged ok.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import create_engine, delete, text

from naer.fhir.systems import CPR, MUNICIPALITY_CODES, MUNICIPALITY_EXTENSION, SOR
from naer.messaging import carecommunication as cc
from naer.messaging import notification as hn
from naer.messaging import parts
from naer.store.bulk import load
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade

SCHEMA = "naer_messaging_bench"
START = datetime(2024, 11, 1, 8, 0, tzinfo=UTC)  # the stream's first day; the receivers' clock stands after
RECEIVED = datetime(2024, 12, 31, 10, 0, tzinfo=UTC)  # (an event after the receiver's tomorrow is refused)
HOSPITAL = parts.Party("265161000016000", parts.synthetic_gln("265161000016000"), "AUH, Medicinsk afdeling")
HOME = parts.Party("953741000016009", parts.synthetic_gln("953741000016009"), "Samsø Kommune, hjemmeplejen")
NURSE = cc.Author("Hanne", "Hansen", "sygeplejerske", "87654321")
DOCTOR = cc.Author("Lars", "Berg", "overlaege", "12345678")


def _cpr(i: int) -> str:
    born = datetime(1930, 1, 1) + timedelta(days=(i * 37) % 20000)
    return born.strftime("%d%m%y") + f"{i % 10000:04d}"


def _store(url: str, citizens: int, reload: bool) -> str:
    base = database_url(url)
    admin = create_engine(base)
    with admin.begin() as con:
        exists = con.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": SCHEMA}).first()
        if reload and exists:
            con.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
            exists = None
        if not exists:
            con.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    target = in_schema(base, SCHEMA)
    upgrade(target)
    db = engine(target)
    with db.connect() as con:
        have = con.execute(text("SELECT count(*) FROM resources WHERE resource_type = 'Patient'")).scalar()
    if have != citizens:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            muni = {"system": MUNICIPALITY_CODES, "value": "0741"}
            org = "Organization"
            orgs = [
                {"resourceType": org, "id": "muni-0741", "name": "Samsø Kommune", "identifier": [muni]},
                {"resourceType": org, "id": "home-0741", "name": HOME.name,
                 "identifier": [{"system": SOR, "value": HOME.sor}],
                 "partOf": {"reference": "Organization/muni-0741"}},
                {"resourceType": org, "id": "dept-med", "name": HOSPITAL.name,
                 "identifier": [{"system": SOR, "value": HOSPITAL.sor}]},
            ]  # fmt: skip
            (folder / "Organization.ndjson").write_bytes(b"\n".join(orjson.dumps(o) for o in orgs))
            code = {"coding": [{"system": MUNICIPALITY_CODES, "code": "0741"}]}
            with (folder / "Patient.ndjson").open("wb") as out:
                for i in range(citizens):
                    where = {"url": MUNICIPALITY_EXTENSION, "valueCodeableConcept": code}
                    out.write(orjson.dumps({
                        "resourceType": "Patient", "id": f"c{i}",
                        "identifier": [{"system": CPR, "value": _cpr(i)}],
                        "name": [{"family": f"Borger{i}", "given": ["Test"]}],
                        "address": [{"extension": [where]}],
                    }) + b"\n")  # fmt: skip
            load(db, SYSTEM, folder)
    return target


def _stream(citizens: int, count: int) -> list[bytes]:
    """``count`` distinct messages, as a hospital's day sends them (in order per stay)."""
    rng = random.Random(21)
    made: list[bytes] = []
    stay_no = 0
    while len(made) < count:
        who = rng.randrange(citizens)
        citizen = parts.Citizen(_cpr(who), f"Borger{who}", ("Test",))
        start = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
        stay = hn.Stay(episode=parts.new_id(), klass="IMP", start=start)
        plan = [("STIN", 0), ("STOR", 30), ("SLOR", 40), ("SLHJ", 70)]
        if stay_no % 4 == 0:
            plan.insert(1, ("RE_STIN", 1))
        for code, hours in plan:
            at = start + timedelta(hours=hours)
            leave = (start + timedelta(hours=30), start + timedelta(hours=40))
            current = hn.Stay(stay.episode, "IMP", start, end=at, leave_start=leave[0], leave_end=leave[1],
                              history=stay.history, state=stay.state)  # fmt: skip
            message = hn.build(code, HOSPITAL, HOME, citizen, current, at)
            kind = hn.kinds()[code]
            step = hn.Step(message["entry"][0]["resource"]["id"], kind.activities["IMP"], at, HOSPITAL)
            stay = hn.Stay(
                stay.episode, "IMP", start, history=(*stay.history, step), state=kind.states["IMP"]
            )
            made.append(orjson.dumps(message))
        if stay_no % 2 == 0:
            thread = cc.Thread(identifier=cc.segment_id(), category="discharge", topic=None)
            at = start + timedelta(hours=71)
            first = [
                cc.text_segment("Udskrevet i dag; se epikrisen. Ring ved spørgsmål.", DOCTOR, HOSPITAL, at)
            ]
            message, thread = cc.build("new", thread, first, HOSPITAL, HOME, citizen, at)
            made.append(orjson.dumps(message))
            reply = [cc.text_segment("Tak, vi tager over i morgen.", NURSE, HOME, at + timedelta(hours=2))]
            answer, _ = cc.build("reply", thread, reply, HOME, HOSPITAL, citizen, at + timedelta(hours=2))
            # The reply goes the other way: the hospital receives it (a unit Nær holds too)
            made.append(orjson.dumps(answer))
        stay_no += 1
    return made[:count]


def _worker(job: tuple[str, list[bytes]]) -> tuple[int, dict[str, int]]:
    from naer import clock
    from naer.messaging.receive import receive

    url, messages = job
    clock.set_clock(RECEIVED)
    db = engine(url)
    db.dispose(close=False)  # the parent's connections stay the parent's (forked)
    outcomes: dict[str, int] = {}
    for raw in messages:
        receipt = receive(db, raw)
        key = f"{receipt.outcome}/{receipt.code}"
        outcomes[key] = outcomes.get(key, 0) + 1
    db.dispose()
    return len(messages), outcomes


def _round(url: str, messages: list[bytes], workers: int) -> tuple[float, dict[str, int]]:
    from naer.messaging.tables import hospital_stay, message, message_bundle

    with engine(url).begin() as con:
        for table in (message, message_bundle, hospital_stay):
            con.execute(delete(table))
    engine(url).dispose()
    # Each stay's messages stay in one worker, in order (as one sender's queue would deliver them)
    shares: list[list[bytes]] = [[] for _ in range(workers)]
    size = -(-len(messages) // workers)
    for index in range(workers):
        shares[index] = messages[index * size : (index + 1) * size]
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(workers) as pool:
        results = pool.map(_worker, [(url, share) for share in shares])
    elapsed = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for _count, found in results:
        for key, value in found.items():
            outcomes[key] = outcomes.get(key, 0) + value
    return elapsed, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("NAER_TEST_DATABASE_URL", ""))
    parser.add_argument("--citizens", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        raise SystemExit("set NAER_TEST_DATABASE_URL (or --url) to a PostgreSQL database")
    url = _store(args.url, args.citizens, args.reload)
    messages = _stream(args.citizens, args.messages)
    size = sum(len(m) for m in messages) / len(messages)
    print(f"{len(messages)} messages (mean {size / 1024:.1f} KiB), {args.citizens} citizens, PostgreSQL")
    for workers in args.workers:
        elapsed, outcomes = _round(url, messages, workers)
        rate = len(messages) / elapsed
        refused = {k: n for k, n in outcomes.items() if not k.startswith(("applied", "not-served"))}
        if refused:
            print(f"  (not every message was taken: {refused}; the figure does not count)")
        print(f"  {workers} worker{'s' if workers > 1 else ''}: {elapsed:.1f} s, {rate:.0f} messages/s "
              f"({rate / workers:.0f} per worker)  outcomes: {outcomes}")  # fmt: skip
    print("goal: at least 200 messages/s")


if __name__ == "__main__":
    main()
