"""The store on SQLite and PostgreSQL: versions, history, optimistic locking, refusals that write nothing."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from naer.store import resources as store
from naer.store.context import SYSTEM, RequestContext
from naer.store.db import engine
from naer.store.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from naer.store.tables import history, resources

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": "0101709994"}],
    "name": [{"family": "Jensen", "given": ["Karen"]}],
    "gender": "female",
    "birthDate": "1970-01-01",
}


def _rows(url: str) -> tuple[int, int]:
    with engine(url).connect() as con:
        current = con.execute(select(func.count()).select_from(resources)).scalar_one()
        versions = con.execute(select(func.count()).select_from(history)).scalar_one()
    return current, versions


def test_versions_and_history(store_url: str) -> None:
    db = engine(store_url)
    made = store.create(db, SYSTEM, "Patient", PATIENT)
    assert made.created and made.version_id == 1 and len(made.id) == 36
    body = orjson.loads(store.read(db, SYSTEM, "Patient", made.id).content or "")
    assert body["meta"]["versionId"] == "1" and body["id"] == made.id and body["name"] == PATIENT["name"]
    assert body["meta"]["lastUpdated"].endswith("Z")

    changed = store.update(db, SYSTEM, "Patient", made.id, {**body, "gender": "other"}, if_match=1)
    assert changed.version_id == 2 and not changed.created
    with pytest.raises(PreconditionFailed, match="at version 2, not 1"):
        store.update(db, SYSTEM, "Patient", made.id, {**body, "gender": "male"}, if_match=1)
    assert orjson.loads(store.vread(db, SYSTEM, "Patient", made.id, "1").content or "")["gender"] == "female"

    gone = store.delete(db, SYSTEM, "Patient", made.id)
    assert gone is not None and gone.version_id == 3
    assert store.delete(db, SYSTEM, "Patient", made.id) is None  # deleting again changes nothing
    with pytest.raises(Gone):
        store.read(db, SYSTEM, "Patient", made.id)
    with pytest.raises(Gone):
        store.vread(db, SYSTEM, "Patient", made.id, "3")
    versions, total = store.history_of(db, SYSTEM, "Patient", made.id)
    assert total == 3 and [(v.version_id, v.method) for v in versions] == [
        (3, "DELETE"),
        (2, "PUT"),
        (1, "POST"),
    ]

    again = store.update(db, SYSTEM, "Patient", made.id, {**body, "gender": "male"})
    assert again.version_id == 4 and again.created  # a deleted resource comes back as a new version
    assert _rows(store_url) == (1, 4)


def test_update_creates_with_the_clients_id(store_url: str) -> None:
    db = engine(store_url)
    made = store.update(db, SYSTEM, "Patient", "p-1", {**PATIENT, "id": "p-1"})
    assert made.created and made.version_id == 1
    with pytest.raises(PreconditionFailed):
        store.update(db, SYSTEM, "Patient", "p-2", {**PATIENT, "id": "p-2"}, if_match=1)
    with pytest.raises(Conflict):
        store.create(db, SYSTEM, "Patient", PATIENT, rid="p-1")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda db: store.create(db, SYSTEM, "Patient", [1, 2]), Invalid, "JSON object"),
        (lambda db: store.create(db, SYSTEM, "Patient", {"gender": "x"}), Invalid, "no resourceType"),
        (
            lambda db: store.create(db, SYSTEM, "Patient", {"resourceType": "Encounter"}),
            Invalid,
            "URL is for",
        ),
        (lambda db: store.create(db, SYSTEM, "Pasient", PATIENT), NotFound, "unknown resource type"),
        (
            lambda db: store.create(db, SYSTEM, "Patient", {**PATIENT, "colour": "red"}),
            Unprocessable,
            "colour",
        ),
        (
            lambda db: store.create(db, SYSTEM, "Patient", {**PATIENT, "name": "Jensen"}),
            Unprocessable,
            "name",
        ),
        (
            lambda db: store.create(db, SYSTEM, "Patient", {**PATIENT, "birthDate": "1970-13-01"}),
            Unprocessable,
            "birthDate",
        ),
        (
            lambda db: store.update(db, SYSTEM, "Patient", "a", {**PATIENT, "id": "b"}),
            Invalid,
            "not the URL's",
        ),
        (
            lambda db: store.update(db, SYSTEM, "Patient", "a/b", {**PATIENT, "id": "a/b"}),
            Invalid,
            "not a FHIR id",
        ),
        (lambda db: store.read(db, SYSTEM, "Patient", "nobody"), NotFound, "not known"),
        (lambda db: store.vread(db, SYSTEM, "Patient", "nobody", "x"), NotFound, "no version"),
    ],
)
def test_refusals_write_nothing(store_url: str, call: Any, error: type[Exception], message: str) -> None:
    db = engine(store_url)
    store.create(db, SYSTEM, "Patient", PATIENT)
    before = _rows(store_url)
    with pytest.raises(error, match=message):
        call(db)
    assert _rows(store_url) == before


def test_concurrent_updates_lose_cleanly(store_url: str) -> None:
    """Writers racing on one resource: every update either makes the next version or is refused with a
    conflict; no version is lost or written twice."""
    db = engine(store_url)
    made = store.create(db, SYSTEM, "Patient", PATIENT)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        for _ in range(5):
            current = store.read(db, SYSTEM, "Patient", made.id)
            body = {**orjson.loads(current.content or ""), "gender": ["male", "female"][n % 2]}
            try:
                store.update(db, SYSTEM, "Patient", made.id, body, if_match=current.version_id)
                outcomes.append("ok")
            except (PreconditionFailed, Conflict):
                outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions, total = store.history_of(db, SYSTEM, "Patient", made.id, count=100)
    assert total == 1 + outcomes.count("ok")
    assert sorted(v.version_id for v in versions) == list(range(1, total + 1))


def test_every_operation_asks_the_context(store_url: str) -> None:
    db = engine(store_url)
    asked: list[tuple[str, str | None]] = []

    class RefuseReads(RequestContext):
        actor = "Practitioner/x"

        def permit(self, action: Any, resource_type: str | None) -> None:
            asked.append((action, resource_type))
            if action == "read":
                raise Forbidden(f"{self.actor} may not read {resource_type}")

    made = store.create(db, SYSTEM, "Patient", PATIENT)
    asker = RefuseReads()
    with pytest.raises(Forbidden, match="may not read"):
        store.read(db, asker, "Patient", made.id)
    store.vread(db, asker, "Patient", made.id, "1")
    store.history_of(db, asker, "Patient")
    store.update(db, asker, "Patient", made.id, {**PATIENT, "id": made.id})
    store.delete(db, asker, "Patient", made.id)
    assert [a for a, _ in asked] == ["read", "vread", "history", "update", "delete"]


def test_db_upgrade_command(naer: Any, tmp_path: Any) -> None:
    done = naer("db", "upgrade", "--url", f"sqlite:///{tmp_path / 's.sqlite'}", cwd=tmp_path)
    assert done.returncode == 0 and "at schema revision 0008" in done.stdout, done.stderr
    again = naer("db", "upgrade", "--url", f"sqlite:///{tmp_path / 's.sqlite'}", cwd=tmp_path)
    assert again.returncode == 0 and "0008" in again.stdout
    down = naer("db", "upgrade", "--url", "postgresql://postgres@127.0.0.1:1/none", cwd=tmp_path)
    assert down.returncode == 2 and "cannot reach the store database" in down.stderr
    assert "Traceback" not in down.stderr
    odd = naer("db", "upgrade", "--url", "mysql://x", cwd=tmp_path)
    assert odd.returncode == 2 and "unsupported database URL" in odd.stderr


def test_concurrent_conditional_creates_make_one_resource(store_url: str) -> None:
    """8 clients x 10 rounds of If-None-Exist creates with the same CPR number: one Patient per round, and
    each client gets that one back (the lock before the search serialises them)."""
    from naer.store import conditional

    db = engine(store_url)
    rounds, clients = 10, 8
    got: dict[int, set[str]] = {n: set() for n in range(rounds)}
    failures: list[str] = []

    def client(round_: int, barrier: threading.Barrier) -> None:
        criteria = f"identifier=urn:oid:1.2.208.176.1.2|01019{round_:05d}"
        cpr = {"system": "urn:oid:1.2.208.176.1.2", "value": f"01019{round_:05d}"}
        body = {**PATIENT, "identifier": [cpr]}
        barrier.wait()
        try:
            got[round_].add(conditional.create(db, SYSTEM, "Patient", body, criteria).id)
        except Exception as error:  # every failure is a finding here
            failures.append(repr(error))

    for round_ in range(rounds):
        barrier = threading.Barrier(clients)
        threads = [threading.Thread(target=client, args=(round_, barrier)) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    assert all(len(ids) == 1 for ids in got.values()), got
    with db.connect() as con:
        stored = con.execute(text("SELECT count(*) FROM resources WHERE resource_type = 'Patient'")).scalar()
    assert stored == rounds


def test_postgresql_connections_run_without_jit(store_url: str) -> None:
    """The access policy's subqueries make PostgreSQL's cost estimates huge, past its JIT threshold, and
    compiling a GP's export query took 1.35 s of 1.6 s; every connection of the store's engine has JIT off,
    also after the pool rolled a returned connection back."""
    from sqlalchemy import text

    from naer.store.db import engine, is_postgres

    db = engine(store_url)
    if not is_postgres(db):
        pytest.skip("JIT is PostgreSQL's")
    for _ in range(3):
        with db.connect() as con:
            assert con.execute(text("SHOW jit")).scalar_one() == "off"
            con.rollback()
