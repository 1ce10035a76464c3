"""The policy decided once for a request (AccessContext.listing: conditions.permitted_ids lists the
citizens an asker may see, from the asker's side) against the policy decided citizen by citizen, for every
asker of the access matrix's world (tests/access_world.py) on SQLite and PostgreSQL: the same citizens
listed as the hand-written oracle says, and the same rows from every kind of query."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from naer import clock
from naer.access import accounts
from naer.access.context import AccessContext
from naer.store.errors import Forbidden
from naer.store.search.query import search
from tests.access_world import ASKERS, CITIZENS, SEES, World, build
from tests.conftest import new_store

QUERIES = [
    ("Patient", [("_count", "100")]),
    ("Observation", [("_count", "100")]),
    ("Encounter", [("_count", "100"), ("_include", "Encounter:subject")]),
    ("Patient", [("_revinclude", "Observation:subject"), ("_count", "100")]),
    ("Observation", [("subject:Patient.gender", "female"), ("_count", "100")]),
    ("Patient", [("_has:Observation:subject:code", "8867-4"), ("_count", "100")]),
    ("Observation", [("_summary", "count")]),
]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with new_store(request.param, tmp_path_factory.mktemp("listed")) as url:
        try:
            yield build(url)
        finally:
            clock.set_clock(None)


@pytest.mark.parametrize("asker", list(ASKERS))
def test_listing_decides_as_the_policy_does(world: World, asker: str) -> None:
    account = accounts.get(world.db, asker)
    assert account is not None
    context = AccessContext(accounts.principal(world.db, account, None, "127.0.0.1"), world.db, None)
    listing = context.listing()
    assert set(listing.citizens()) & set(CITIZENS) == SEES[asker]
    for kind, pairs in QUERIES:
        if ASKERS[asker][0] == "planner":  # may search no record either way
            for way in (context, listing):
                with pytest.raises(Forbidden):
                    search(world.db, way, kind, pairs)
            continue
        one_by_one, listed = search(world.db, context, kind, pairs), search(world.db, listing, kind, pairs)
        assert [m.id for m in listed.matches] == [m.id for m in one_by_one.matches], (kind, pairs)
        assert sorted(m.id for m in listed.included) == sorted(m.id for m in one_by_one.included)
        assert listed.total == one_by_one.total
        for m in listed.matches:
            subject = orjson.loads(m.content or "{}").get("subject", {}).get("reference", "")
            assert not subject or subject.split("/", 1)[1] in SEES[asker] | {""}
