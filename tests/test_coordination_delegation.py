"""The shared competence register, medical responsibility and framework delegation end to end through
the API, on SQLite and PostgreSQL: who may register what, coverage and expiry, overlapping
responsibilities refused, non-delegable treatments refused, and a delegated treatment assigned only to
a nurse whose competence covers it on the day — every refusal writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer.coordination.competence import add_months
from naer.store.tables import resources
from tests.coordination_world import World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)

INSTRUCTION = {
    "title": "Instruks: IV antibiotika i eget hjem",
    "text": "1. Kontrollér PVK.\n2. ...",
    "version": "3",
}


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "delegation")


def _post(api: TestClient, w: World, person: str, path: str, **body: Any) -> Any:
    return api.post(path, headers=w.headers(person), content=orjson.dumps(body))


def _counts(w: World) -> dict[str, int]:
    with w.db.connect() as con:
        rows = con.execute(
            select(resources.c.resource_type, func.count()).group_by(resources.c.resource_type)
        ).all()
    return {str(k): int(n) for k, n in rows}


def test_months_are_added_as_a_calendar_does() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 24) == date(2027, 11, 15)


def test_the_competence_register(world: tuple[World, TestClient]) -> None:
    w, api = world
    made = _post(api, w, "admin", "/workflow/competence", practitioner="pr-nurse", competence="iv-therapy",
                 completed="2025-01-01", issuer="hosp")  # fmt: skip
    assert made.status_code == 201, made.text
    qualification = made.json()["qualification"][-1]
    assert qualification["period"] == {"start": "2025-01-01", "end": "2027-01-01"}  # 24 months
    assert qualification["issuer"]["reference"] == "Organization/hosp"
    expired = _post(api, w, "admin", "/workflow/competence", practitioner="pr-nurse2",
                    competence="iv-therapy", completed="2024-06-01", valid_until="2026-06-30")  # fmt: skip
    assert expired.status_code == 201, expired.text
    before = _counts(w)
    for person, body, status, message in [
        ("nurse", {"practitioner": "pr-nurse", "competence": "iv-therapy", "completed": "2025-01-01"}, 403,
         "kept by administrators"),
        ("admin", {"practitioner": "pr-nurse", "competence": "juggling", "completed": "2025-01-01"}, 400,
         "unknown competence 'juggling'"),
        ("admin", {"practitioner": "pr-nurse", "competence": "iv-therapy", "completed": "2027-01-01"}, 400,
         "cannot be completed in the future"),
        ("admin", {"practitioner": "pr-nurse", "competence": "iv-therapy", "completed": "2025-01-01",
                   "valid_until": "2024-01-01"}, 400, "before the day"),
        ("admin", {"practitioner": "pr-nobody", "competence": "iv-therapy", "completed": "2025-01-01"}, 404,
         "not known"),
        ("admin", {"practitioner": "pr-nurse", "competence": "iv-therapy", "completed": "2025-01-01",
                   "issuer": "org-gone"}, 422, "no Organization/org-gone"),
    ]:  # fmt: skip
        answer = _post(api, w, person, "/workflow/competence", **body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["issue"][0]["diagnostics"]
    assert _counts(w) == before

    coverage = api.get(
        "/workflow/competence/coverage?competence=iv-therapy&organization=muni-0741&day=2026-12-07",
        headers=w.headers("nurse"),
    ).json()
    assert [h["practitioner"] for h in coverage["holders"]] == ["pr-nurse"] and coverage["people"] == 3
    later = api.get(
        "/workflow/competence/coverage?competence=iv-therapy&organization=muni-0741&day=2027-01-02",
        headers=w.headers("nurse"),
    ).json()
    assert later["holders"] == []
    expiring = api.get(
        "/workflow/competence/expiring?organization=muni-0741&within=60", headers=w.headers("nurse")
    )
    assert [(e["practitioner"], e["competence"], e["end"]) for e in expiring.json()] == [
        ("pr-nurse", "iv-therapy", "2027-01-01")
    ]
    bad = api.get("/workflow/competence/coverage?competence=iv-therapy&organization=muni-0741&day=tonight",
                  headers=w.headers("nurse"))  # fmt: skip
    assert bad.status_code == 400 and "day must be a date" in bad.text
    for query in ("coverage?competence=iv-therapy&organization=nowhere", "expiring?organization=nowhere"):
        unknown = api.get(f"/workflow/competence/{query}", headers=w.headers("nurse"))
        assert unknown.status_code == 422 and "no Organization/nowhere" in unknown.text
    for completed in (
        "-0",
        "86400",
        "20250101",
        "0001-01-01",
        "2025-02-30",
    ):  # only a date, from 1900 to 2100
        body = {"practitioner": "pr-nurse", "competence": "iv-therapy", "completed": completed}
        answer = _post(api, w, "admin", "/workflow/competence", **body)
        assert answer.status_code == 400, (completed, answer.text)


def test_medical_responsibility_is_registered_and_never_doubled(world: tuple[World, TestClient]) -> None:
    w, api = world
    made = _post(api, w, "gp", "/workflow/responsibility", patient="p-home", setting="acute-bed",
                 start="2026-12-07", end="2026-12-14")  # fmt: skip
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["participant"][0]["member"]["reference"] == "PractitionerRole/role-gp"
    assert team["reasonCode"][0]["coding"][0]["code"] == "acute-bed"
    before = _counts(w)
    overlap = _post(api, w, "gp", "/workflow/responsibility", patient="p-home", setting="acute-bed",
                    start="2026-12-10")  # fmt: skip
    assert overlap.status_code == 409 and "holds the medical responsibility (acute-bed)" in overlap.text
    assert _post(api, w, "nurse", "/workflow/responsibility", patient="p-home", setting="home",
                 start="2026-12-07").status_code == 403  # fmt: skip
    assert _post(api, w, "gp", "/workflow/responsibility", patient="p-home", setting="home",
                 start="2026-12-07", end="2026-12-01").status_code == 400  # fmt: skip
    assert _post(api, w, "gp", "/workflow/responsibility", patient="p-none", setting="home",
                 start="2026-12-07").status_code == 404  # fmt: skip
    for start in ("1900-01-01", "2026-11-06", "2028-01-01"):  # a relation is not registered years late
        late = _post(api, w, "gp", "/workflow/responsibility", patient="p-home", setting="home", start=start)
        assert late.status_code == 400 and "registered at most 30 days late" in late.text, start
    assert _counts(w) == before
    ended = _post(api, w, "gp", f"/workflow/responsibility/{team['id']}/end", end="2026-12-09")
    assert ended.status_code == 200 and ended.json()["period"]["end"] == "2026-12-09"
    again = _post(
        api, w, "gp", "/workflow/responsibility", patient="p-home", setting="acute-bed", start="2026-12-10"
    )
    assert again.status_code == 201, again.text
    listed = api.get("/workflow/responsibility?patient=p-home", headers=w.headers("nurse")).json()
    assert len(listed["entry"]) == 2
    assert (
        api.get("/workflow/responsibility?patient=p-home", headers=w.headers("nurse-other")).status_code
        == 404
    )
    # Ending can only bring the end forward, never lengthen a responsibility (the tester's fault 5).
    longer = _post(api, w, "gp", f"/workflow/responsibility/{team['id']}/end", end="9999-12-31")
    assert longer.status_code == 400  # outside 1900-2100
    longer = _post(api, w, "gp", f"/workflow/responsibility/{team['id']}/end", end="2027-01-01")
    assert longer.status_code == 409 and "can only bring that day forward" in longer.text


def test_framework_delegation_and_its_assignment(world: tuple[World, TestClient]) -> None:
    w, api = world
    for practitioner, completed, until in (("pr-nurse", "2025-01-01", None),
                                           ("pr-nurse2", "2024-06-01", "2026-06-30")):  # fmt: skip
        body = {"practitioner": practitioner, "competence": "iv-therapy", "completed": completed}
        assert _post(api, w, "admin", "/workflow/competence", **body, valid_until=until).status_code == 201
    made = _post(api, w, "gp", "/workflow/delegation", treatment="iv-antibiotics", start="2026-12-07",
                 end="2026-12-21", conditions="Ved feber > 38,5 og CRP > 100 efter telefonisk konference",
                 instruction=INSTRUCTION, patient="p-home")  # fmt: skip
    assert made.status_code == 201, made.text
    delegation = made.json()
    assert delegation["performerType"]["coding"][0]["code"] == "iv-therapy"
    assert delegation["occurrencePeriod"] == {"start": "2026-12-07", "end": "2026-12-21"}
    document = api.get(
        f"/fhir/{delegation['supportingInfo'][0]['reference']}", headers=w.headers("gp")
    ).json()
    assert document["masterIdentifier"]["value"] == "iv-antibiotics|3"
    before = _counts(w)
    for person, body, status, message in [
        ("gp", {"treatment": "prescribing"}, 422, "cannot be delegated"),
        ("gp", {"treatment": "death-certificate"}, 422, "cannot be delegated"),
        ("gp", {"treatment": "coercive-measures"}, 422, "cannot be delegated"),
        ("gp", {"treatment": "teleportation"}, 400, "unknown treatment"),
        ("nurse", {}, 403, "a physician's"),
        ("gp", {"end": "2026-12-01"}, 400, "ends before it starts"),
        ("gp", {"patient": None}, 400, "one citizen (patient) or one citizen group"),
        ("gp", {"patient": "p-none"}, 404, "not known"),
    ]:
        full = {"treatment": "iv-antibiotics", "start": "2026-12-07", "end": "2026-12-21", "conditions": "c",
                "instruction": INSTRUCTION, "patient": "p-home", **body}  # fmt: skip
        answer = _post(api, w, person, "/workflow/delegation", **full)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["issue"][0]["diagnostics"]
    assert _counts(w) == before

    path = f"/workflow/delegation/{delegation['id']}/assign"
    task = _post(api, w, "nurse", path, patient="p-home", nurse="role-nurse", day="2026-12-08")
    assert task.status_code == 201, task.text
    assert task.json()["owner"]["reference"] == "PractitionerRole/role-nurse"
    assert task.json()["basedOn"] == [{"reference": f"ServiceRequest/{delegation['id']}"}]
    before = _counts(w)
    for body, status, message in [
        ({"nurse": "role-nurse2"}, 422, "does not hold the competence 'iv-therapy'"),  # expired in June
        ({"nurse": "role-nurse-other"}, 422, "does not hold the competence"),  # never had it
        ({"day": "2026-12-25"}, 422, "not on 2026-12-25"),
        ({"day": "2027-01-02"}, 422, "not on 2027-01-02"),
        ({"patient": "p-admitted"}, 422, "the delegation is for Patient/p-home"),
        ({"nurse": "role-nobody"}, 422, "no active nurse"),
    ]:
        answer = _post(
            api, w, "nurse", path, **{"patient": "p-home", "nurse": "role-nurse", "day": "2026-12-08", **body}
        )
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["issue"][0]["diagnostics"]
    assert _counts(w) == before
    # The nurse's competence runs out on 1 January: a treatment on 2 January would be refused even inside a
    # longer delegation.
    long = _post(api, w, "gp", "/workflow/delegation", treatment="iv-antibiotics", start="2026-12-07",
                 end="2027-02-01", conditions="c", instruction=INSTRUCTION,
                 patient="p-home").json()  # fmt: skip
    late = _post(api, w, "nurse", f"/workflow/delegation/{long['id']}/assign", patient="p-home",
                 nurse="role-nurse", day="2027-01-02")  # fmt: skip
    assert late.status_code == 422 and "on 2027-01-02" in late.text
