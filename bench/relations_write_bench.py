"""What keeping the care relations as rows costs a write (store/relations.py): an Encounter (a type that
makes four of the policy's relations) written again and again, with the relations kept and without.

    python bench/relations_write_bench.py                       # SQLite in a temporary folder
    python bench/relations_write_bench.py --url postgresql://postgres@127.0.0.1:5432/test

On PostgreSQL it works in a schema of its own (``naer_relations_bench``), dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text

from naer.store import relations
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.db import database_url, engine, in_schema
from naer.store.migrate import upgrade
from naer.store.search import index as search_index

SCHEMA = "naer_relations_bench"
STAY = {
    "resourceType": "Encounter", "status": "in-progress",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
    "subject": {"reference": "Patient/p1"}, "serviceProvider": {"reference": "Organization/o1"},
    "participant": [{"individual": {"reference": "PractitionerRole/r1"}}],
    "period": {"start": "2026-11-20T08:00:00Z"},
}  # fmt: skip


def _round(db: Any, n: int) -> float:
    began = time.perf_counter()
    for i in range(n):
        store.update(db, SYSTEM, "Encounter", f"e{i}", {**STAY, "id": f"e{i}"})
    return (time.perf_counter() - began) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: SQLite in a temporary folder)")
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.url:
        admin = create_engine(database_url(args.url))
        with admin.begin() as con:
            con.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            con.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        url = in_schema(database_url(args.url), SCHEMA)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='naer-relations-')}/store.sqlite"
    upgrade(url)
    db = engine(url)
    store.update(db, SYSTEM, "Patient", "p1", {"resourceType": "Patient", "id": "p1"})
    _round(db, args.writes)  # every Encounter written once: the rounds below replace them
    kept: Callable[..., None] = relations.written
    times: dict[str, list[float]] = {"kept": [], "not kept": []}
    try:
        for _ in range(args.rounds):  # alternated, so that both see the same machine
            search_index.relations.written = kept  # type: ignore[attr-defined]
            times["kept"].append(_round(db, args.writes))
            search_index.relations.written = lambda *a, **k: None  # type: ignore[attr-defined]
            times["not kept"].append(_round(db, args.writes))
    finally:
        search_index.relations.written = kept  # type: ignore[attr-defined]
        if args.url:
            with create_engine(database_url(args.url)).begin() as con:
                con.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    kind = "PostgreSQL" if args.url else "SQLite"
    for name, found in times.items():
        print(f"{kind}, an Encounter written, relations {name}: median {statistics.median(found):.2f} ms "
              f"({args.rounds} rounds of {args.writes})")  # fmt: skip


if __name__ == "__main__":
    main()
