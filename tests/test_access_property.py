"""Random relations, blocks, break-the-glass grants and queries: the set of citizens any query reveals to
an asker equals the set the policy allows (written here as plain Python, apart from the SQL engine).

Scaled by NAER_ACCESS_EXAMPLES (default 25 in CI; more in a benchmark run)."""

from __future__ import annotations

import itertools
import os
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from naer import clock
from naer.access import accounts, audit, glass
from naer.access.context import AccessContext
from naer.store import resources as store
from naer.store.compartment import everything
from naer.store.context import SYSTEM
from naer.store.db import engine
from naer.store.errors import NotFound
from naer.store.migrate import upgrade
from naer.store.search.query import search
from tests.access_world import NOW, observation

EXAMPLES = int(os.environ.get("NAER_ACCESS_EXAMPLES", "25"))
COUNTER = itertools.count()

citizen = st.fixed_dictionaries(
    {
        "gp": st.sampled_from(["A", "B"]),
        "home": st.sampled_from(["open-A", "open-B", "ended-A", "none"]),
        "block": st.sampled_from(["none", "person", "organisation", "parent-with-sub-units", "parent-only"]),
        "glass": st.sampled_from(["none", "running", "expired"]),
    }
)


def allowed(asker: str, c: dict[str, str]) -> bool:
    """The policy, as a clinician would read it, for the two askers of this test."""
    if c["glass"] == "running":
        return True
    blocked = c["block"] in ("person", "organisation") or (  # the clinic has no organisation above it
        asker == "nurse" and c["block"] == "parent-with-sub-units"
    )
    related = c["gp"] == "A" if asker == "gp" else c["home"] == "open-A"
    return related and not blocked


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('property') / 'store.sqlite'}"
    upgrade(url)
    yield engine(url)
    clock.set_clock(None)


def _put(db: Any, resource: dict[str, Any]) -> None:
    store.update(db, SYSTEM, resource["resourceType"], resource["id"], resource)


def _world(db: Any, n: int, people: list[dict[str, str]]) -> dict[str, AccessContext]:
    """The example's organisations, askers and citizens (ids unique to the example)."""
    clock.set_clock(NOW)
    x = f"x{n}"
    for org, parent in (
        (f"{x}-clinic-A", None),
        (f"{x}-clinic-B", None),
        (f"{x}-kommune", None),
        (f"{x}-home-A", f"{x}-kommune"),
        (f"{x}-home-B", None),
    ):
        _put(
            db,
            {
                "resourceType": "Organization",
                "id": org,
                **({"partOf": {"reference": f"Organization/{parent}"}} if parent else {}),
            },
        )
    contexts = {}
    for asker, org in (("gp", f"{x}-clinic-A"), ("nurse", f"{x}-home-A")):
        name = f"{x}-{asker}"
        role = "gp" if asker == "gp" else "home-care-nurse"
        accounts.add(db, name, name, role, None, practitioner=f"{name}-person", organization=org)
        account = accounts.get(db, name)
        assert account is not None
        contexts[asker] = AccessContext(accounts.principal(db, account, None, "test"), db, None)
    for i, c in enumerate(people):
        pid = f"{x}-c{i}"
        _put(
            db,
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": f"urn:{x}", "value": str(i)}],
                "generalPractitioner": [{"reference": f"Organization/{x}-clinic-{c['gp']}"}],
            },
        )
        _put(db, observation(f"{pid}-obs", pid))
        if c["home"] != "none":
            state, unit = c["home"].split("-")
            period = {"start": (NOW - timedelta(days=30)).isoformat()}
            if state == "ended":
                period["end"] = (NOW - timedelta(days=2)).isoformat()
            _put(
                db,
                {
                    "resourceType": "Encounter",
                    "id": f"{pid}-hh",
                    "status": "in-progress" if state == "open" else "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "serviceProvider": {"reference": f"Organization/{x}-home-{unit}"},
                    "period": period,
                },
            )
        for asker in ("gp", "nurse"):
            block = c["block"]
            if block == "none":
                continue
            org = f"{x}-clinic-A" if asker == "gp" else f"{x}-home-A"
            actor = {"person": f"Practitioner/{x}-{asker}-person", "organisation": f"Organization/{org}"}.get(
                block
            )
            if actor is None:  # a block of the organisation above: reaches the unit only with its sub-units
                if asker == "gp":
                    continue  # the clinic has no organisation above it
                actor = f"Organization/{x}-kommune"
            role = "with-sub-units" if block == "parent-with-sub-units" else "blocked"
            _put(
                db,
                {
                    "resourceType": "Consent",
                    "id": f"{pid}-block-{asker}",
                    "status": "active",
                    "scope": {"coding": [{"code": "patient-privacy"}]},
                    "category": [{"coding": [{"code": "59284-0"}]}],
                    "patient": {"reference": f"Patient/{pid}"},
                    "provision": {
                        "type": "deny",
                        "actor": [{"role": {"coding": [{"code": role}]}, "reference": {"reference": actor}}],
                    },
                },
            )
        if c["glass"] != "none":
            for context in contexts.values():
                clock.set_clock(NOW - timedelta(hours=1 if c["glass"] == "running" else 5))
                entry = audit.Entry("break-glass", context.principal.account, "x", "x", "gp", None, "test")
                glass.open_record(db, context.principal, entry, pid, "akut behov for adgang nu", "ETREAT")
                clock.set_clock(NOW)
    return contexts


def _ids(result: Any) -> set[str]:
    found = set()
    for m in [*result.matches, *result.included]:
        resource = orjson.loads(m.content)
        if resource["resourceType"] == "Patient":
            found.add(resource["id"])
        elif "subject" in resource:
            found.add(resource["subject"]["reference"].split("/", 1)[1])
    return found


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # each example builds a world: shrinking would take minutes
)
@given(people=st.lists(citizen, min_size=1, max_size=5))
def test_what_any_query_reveals_is_what_the_policy_allows(db: Any, people: list[dict[str, str]]) -> None:
    n = next(COUNTER)
    contexts = _world(db, n, people)
    x = f"x{n}"
    mine = f"urn:{x}|"
    for asker, context in contexts.items():
        expected = {f"{x}-c{i}" for i, c in enumerate(people) if allowed(asker, c)}
        queries = [
            ("Patient", [("identifier", mine)]),
            ("Observation", [("subject:Patient.identifier", mine)]),
            ("Patient", [("identifier", mine), ("_has:Observation:subject:code", "8867-4")]),
            ("Patient", [("identifier", mine), ("_revinclude", "Observation:subject")]),
            ("Observation", [("subject:Patient.identifier", mine), ("_include", "Observation:subject")]),
            ("Encounter", [("subject:Patient.identifier", mine)]),
        ]
        listing = context.listing()  # the policy decided once for the whole set: the same citizens
        for (kind, pairs), way in itertools.product(queries, (context, listing)):
            result = search(db, way, kind, [*pairs, ("_count", "100")])
            revealed = _ids(result)
            if kind == "Encounter":  # only citizens with a home-care stay have one
                assert revealed <= expected, (asker, pairs, people)
                continue
            assert revealed == expected, f"{asker} {kind} {pairs} {people} {revealed} {expected} {way.listed}"
            assert result.total in (None, len([m for m in result.matches]))
        assert set(listing.citizens()) & {f"{x}-c{i}" for i in range(len(people))} == expected
        for i in range(len(people)):
            pid = f"{x}-c{i}"
            try:
                found = everything(db, context, pid, None, None)
                seen = True
                assert {m.resource_type for m in found} >= {"Patient"}
            except NotFound:
                seen = False
            assert seen == (pid in expected), (asker, pid, people[i])


def test_no_subquery_of_the_access_condition_escapes_its_correlation() -> None:
    """A subquery that names a table of a query two levels out is not correlated with it by SQLAlchemy:
    it becomes a cross join, true whenever such a row exists anywhere (this test's examples found one in
    the blocks of sub-units). The compiled SQL of every role's searches must hold no such cross join."""
    import re
    from datetime import UTC, datetime

    from sqlalchemy import select

    from naer.access.policy import policy
    from naer.access.principal import Principal
    from naer.access.scopes import parse_scopes
    from naer.store.search.query import _base, parse

    queries = [
        ("Observation", [("subject:Patient.identifier", "urn:x|1")]),
        ("Patient", [("_has:Observation:subject:code", "8867-4")]),
        ("Patient", [("_id", "a,b")]),
        ("Encounter", [("service-provider.name", "Samsø")]),
    ]
    for role in policy().roles:
        p = Principal("a", "a", role, parse_scopes("user/*.cruds"), practitioner="n", practitioner_role="r",
                      organization="o", ancestors=("k",), patient="pp")  # fmt: skip
        context = AccessContext(p, None, None, moment=datetime(2026, 12, 3, tzinfo=UTC))
        for kind, pairs in queries:
            sql = str(select(_base(parse(kind, pairs, context=context)).subquery()))
            crossed = re.findall(r"FROM \w+ AS \w+, \w+", sql)
            assert crossed == [], (role, kind, pairs, crossed)
