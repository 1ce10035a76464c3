"""The care relations kept as rows (store/relations.py) against the relations found in the search index
at the moment asked (the walk they replace), on SQLite and PostgreSQL: for every asker of the access
matrix's world and at moments around each relation's ends the same citizens; the rows following each
write (a Task opened, completed, deleted; a discharge's 72 hours; a bulk load); a rebuild deriving the
same rows; and a policy other than the one the rows were derived by never using them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from naer import clock
from naer.access import accounts, conditions
from naer.access.policy import policy
from naer.store import relations
from naer.store import resources as store
from naer.store.bulk import load
from naer.store.context import SYSTEM
from naer.store.resources import reader
from naer.store.tables import care_relation
from tests.access_world import ASKERS, NOW, World, build
from tests.conftest import new_store

MOMENTS = [NOW + timedelta(hours=h) for h in (-24 * 400, -100, -1, 0, 1, 71, 73, 24 * 30, 24 * 400)]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with new_store(request.param, tmp_path_factory.mktemp("kept")) as url:
        try:
            yield build(url)
        finally:
            clock.set_clock(None)


def _listed(w: World, asker: str, moment: datetime, kept: bool) -> set[str]:
    account = accounts.get(w.db, asker)
    assert account is not None
    principal = accounts.principal(w.db, account, None, "127.0.0.1")
    query = conditions.permitted_ids(policy(), principal, moment, kept)
    with reader(w.db).connect() as con:
        return {str(r) for r in con.execute(query).scalars() if r is not None}


def _same_everywhere(w: World) -> None:
    for asker in ASKERS:
        for moment in MOMENTS:
            assert _listed(w, asker, moment, True) == _listed(w, asker, moment, False), (asker, moment)


def _rows(w: World) -> set[tuple[object, ...]]:
    with w.db.connect() as con:
        return {tuple(r) for r in con.execute(select(care_relation))}


def test_the_kept_rows_list_as_the_index_does(world: World) -> None:
    with world.db.connect() as con:
        assert relations.current(con, policy())  # the upgrade derived them, and they are in use
    assert _rows(world)
    _same_everywhere(world)


def test_the_rows_follow_every_write(world: World) -> None:
    task = {
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": "Patient/c-none"}, "owner": {"reference": "Organization/clinic-a"},
    }  # fmt: skip
    made = store.create(world.db, SYSTEM, "Task", task)
    assert "c-none" in _listed(world, "gp-a", NOW, True)  # an open order owned by the clinic: related
    _same_everywhere(world)
    store.update(world.db, SYSTEM, "Task", made.id, {**task, "id": made.id, "status": "completed"})
    assert "c-none" not in _listed(world, "gp-a", NOW, True)  # done: the relation ended with the write
    _same_everywhere(world)
    store.update(world.db, SYSTEM, "Task", made.id, {**task, "id": made.id})
    store.delete(world.db, SYSTEM, "Task", made.id)
    assert "c-none" not in _listed(world, "gp-a", NOW, True)
    assert not [r for r in _rows(world) if r[2] == made.id]
    stay = {
        "resourceType": "Encounter", "status": "finished", "class": {"system":
        "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/c-none"}, "serviceProvider": {"reference": "Organization/clinic-b"},
        "period": {"start": "2026-11-20T08:00:00Z", "end": "2026-12-03T10:00:00Z"},
        "hospitalization": {"dischargeDisposition": {"coding": [{"system":
            "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "home"}]}},
    }  # fmt: skip
    made = store.create(world.db, SYSTEM, "Encounter", stay)
    _same_everywhere(world)  # the 72 hours after the discharge, as the moments cross their end
    store.delete(world.db, SYSTEM, "Encounter", made.id)
    _same_everywhere(world)


def test_a_rebuild_derives_the_same_rows(world: World) -> None:
    before = _rows(world)
    with world.db.begin() as con:
        relations.rebuild(con)
    assert _rows(world) == before


def test_a_bulk_load_keeps_the_rows_of_what_it_loads(world: World, tmp_path: Path) -> None:
    task = {"resourceType": "Task", "id": "bulk-task", "status": "in-progress", "intent": "order",
            "for": {"reference": "Patient/c-ended"},
            "owner": {"reference": "Organization/home-a"}}  # fmt: skip
    (tmp_path / "Task.ndjson").write_bytes(orjson.dumps(task) + b"\n")
    load(world.db, SYSTEM, tmp_path)
    assert [r for r in _rows(world) if r[2] == "bulk-task"]
    assert "c-ended" in _listed(world, "nurse-a", NOW, True)
    _same_everywhere(world)


def test_another_policy_never_uses_the_rows(world: World) -> None:
    shipped = policy()
    fewer = replace(shipped.relations["task"], status=("requested",))
    changed = replace(shipped, relations={**shipped.relations, "task": fewer})
    with world.db.connect() as con:
        assert relations.current(con, shipped) and not relations.current(con, changed)
