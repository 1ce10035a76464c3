"""Benchmark a citizen's course page with ten years of history, access control on (issue 20).

    python bench/course_bench.py                  # Samsø on PostgreSQL (schema naer_bench, loaded if empty)
    python bench/course_bench.py --rounds 100

Uses the store bench/api_bench.py keeps (Samsø, 2015-2024, in the schema ``naer_bench`` of the PostgreSQL
test database; loaded here when missing). Picks the citizen with the most contacts in the ten years and a
GP of that citizen's clinic (an account with the GP's PractitionerRole: the policy decides as for any GP),
then builds the course of the data's last year (naer.coordination.course.course: who is responsible, the
plan, the year's timeline, the ten years as counts) ``--rounds`` times after five to warm up, and prints the
median and the 95th percentile against the issue's 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from naer import clock
from naer.access import accounts
from naer.access.context import AccessContext
from naer.coordination.course import course
from naer.store.bulk import load
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade

BUSIEST = """
SELECT target_id, count(*) AS n FROM search_reference
WHERE resource_type = 'Encounter' AND param = 'patient' AND target_type = 'Patient'
GROUP BY target_id ORDER BY n DESC, target_id LIMIT 1
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("NAER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--year", type=int, default=2024, help="the year the timeline shows")
    args = parser.parse_args()
    base = database_url(args.url)
    with create_engine(base).begin() as con:
        con.execute(text("CREATE SCHEMA IF NOT EXISTS naer_bench"))
    url = in_schema(base, "naer_bench")
    upgrade(url)
    db = engine(url)
    with db.connect() as con:
        held = con.execute(
            text("SELECT count(*) FROM resources WHERE resource_type = 'Patient'")
        ).scalar_one()
    if not held:
        data = Path(__file__).parent / "out" / "samsoe"
        if not (data / "manifest.json").exists():
            from naer.synth.run import SynthRequest, synthesize

            synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, data))
        print(f"loading {data} into naer_bench ...", flush=True)
        load(db, SYSTEM, data)
    with db.connect() as con:
        patient, contacts = con.execute(text(BUSIEST)).one()
        clinic = con.execute(
            text("SELECT target_id FROM search_reference WHERE resource_type = 'Patient' AND id = :p "
                 "AND param = 'general-practitioner' AND target_type = 'Organization'"), {"p": patient},
        ).scalar_one()  # fmt: skip
        role = con.execute(
            text("SELECT id FROM search_reference WHERE resource_type = 'PractitionerRole' "
                 "AND param = 'organization' AND target_id = :c ORDER BY id LIMIT 1"), {"c": clinic},
        ).scalar_one()  # fmt: skip
    name = f"bench-course-gp-{role}"[:64]
    if accounts.get(db, name) is None:
        accounts.add(db, name, "Bench GP", "gp", None, practitioner_role=role, organization=clinic)
    account = accounts.get(db, name)
    assert account is not None
    principal = accounts.principal(db, account, None, "127.0.0.1")
    clock.set_clock(datetime(args.year, 12, 31, 12, 0, tzinfo=UTC))
    from naer.api.auth import Auth

    auth = Auth(db)  # the API's own audit writer: each read of the course is recorded
    times = []
    found = None
    try:
        for n in range(args.rounds + 5):
            context = AccessContext(principal, db, auth.writer)
            began = time.perf_counter()
            found = course(db, context, patient, args.year)
            if n >= 5:
                times.append((time.perf_counter() - began) * 1000)
    finally:
        auth.close()
        clock.set_clock(None)
    assert found is not None
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(
        f"course of Patient/{patient} ({contacts:,} contacts in {len(found.years)} years, {len(found.items)} "
        f"items in {args.year}) as a GP of {clinic}"
    )
    print(
        f"course page, ten years, access on, {args.rounds} rounds: median {statistics.median(times):.0f} ms, "
        f"p95 {p95:.0f} ms (issue 20: p95 under 300 ms)"
    )


if __name__ == "__main__":
    main()
