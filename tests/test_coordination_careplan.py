"""The shared care plan and the care team that follows the Tasks, on SQLite and PostgreSQL: goals and
activities of every life area and sector, the palliative and psychiatric sections, If-Match, who may
write, and an organisation joining the care team when it accepts a follow-up and leaving it (and losing
the access it gave) when its part is done."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.coordination_world import World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "careplan")


def _post(api: TestClient, w: World, person: str, path: str, if_match: str | None = None, **body: Any) -> Any:
    headers = w.headers(person)
    if if_match is not None:
        headers["If-Match"] = if_match
    return api.post(path, headers=headers, content=orjson.dumps(body))


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_plan_across_sectors(world: tuple[World, TestClient]) -> None:
    w, api = world
    empty = api.get("/workflow/care-plan/p-home", headers=w.headers("gp"))
    assert empty.status_code == 200 and empty.headers["ETag"] == 'W/"0"' and empty.json()["entry"] == []
    goal = _post(api, w, "gp", "/workflow/care-plan/p-home/goal", if_match='W/"0"',
                 description="Kan gå til købmanden selv", area="function", due="2027-03-01")  # fmt: skip
    assert goal.status_code == 200, goal.text
    assert goal.headers["ETag"] == 'W/"1"'
    steps = [
        ("gp", "activity", {"description": "Medicingennemgang", "organization": "gp-0741"}),
        ("nurse", "activity", {"description": "Genoptræning to gange ugentligt", "organization": "rehab-0741",
                               "area": "function", "start": "2026-12-08", "end": "2027-02-28"}),
        ("nurse", "activity", {"description": "Samtale om fleksjob", "organization": "muni-0741",
                               "area": "employment"}),
        ("gp", "palliative", {"place_of_care": "Hjemme", "place_of_death": "Hjemme, om muligt",
                              "contact": "Akutteamet døgnet rundt, tlf. 7012 3456",
                              "contact_organization": "home-0741"}),
        ("gp", "psychiatry", {"coordinator": "psych", "crisis_plan": "Ring til psykiatrisk akutmodtagelse"}),
    ]  # fmt: skip
    for person, section, body in steps:
        answer = _post(api, w, person, f"/workflow/care-plan/p-home/{section}", **body)
        assert answer.status_code == 200, (section, answer.text)
    plan = api.get("/workflow/care-plan/p-home", headers=w.headers("nurse"))
    assert plan.headers["ETag"] == 'W/"6"'
    careplan = _resources(plan.json(), "CarePlan")[0]
    performers = [a["detail"]["performer"][0]["reference"] for a in careplan["activity"]]
    assert performers == ["Organization/gp-0741", "Organization/rehab-0741", "Organization/muni-0741"]
    areas = [a["detail"]["code"]["coding"][0]["code"] for a in careplan["activity"]]
    assert areas == ["health", "function", "employment"]
    sections = {
        e["url"].rsplit("/", 1)[1]: {x["url"]: x for x in e["extension"]} for e in careplan["extension"]
    }
    assert sections["care-plan-palliative"]["place-of-death"]["valueString"] == "Hjemme, om muligt"
    assert (
        sections["care-plan-psychiatry"]["coordinator"]["valueReference"]["reference"] == "Organization/psych"
    )
    goals = _resources(plan.json(), "Goal")
    assert [g["description"]["text"] for g in goals] == ["Kan gå til købmanden selv"]
    # The section is replaced, not added twice.
    _post(api, w, "gp", "/workflow/care-plan/p-home/palliative", contact="Lægevagten")
    again = _resources(api.get("/workflow/care-plan/p-home", headers=w.headers("gp")).json(), "CarePlan")[0]
    assert len([e for e in again["extension"] if e["url"].endswith("palliative")]) == 1


def test_bad_changes_change_nothing(world: tuple[World, TestClient]) -> None:
    w, api = world
    before = api.get("/workflow/care-plan/p-home", headers=w.headers("gp")).headers["ETag"]
    for person, section, body, status, message in [
        ("gp", "goal", {"description": "x"}, 412, "read it again"),  # with a stale If-Match (below)
        ("gp", "goal", {"description": " "}, 400, "description must not be empty"),
        ("gp", "goal", {"description": "x", "area": "astrology"}, 400, "unknown life area"),
        ("gp", "activity", {"description": "x", "organization": "org-gone"}, 422,
         "no active Organization/org-gone"),
        ("gp", "activity", {"description": "x", "organization": "gp-0741", "start": "2027-01-02",
                            "end": "2027-01-01"}, 400, "ends before it starts"),
        ("gp", "psychiatry", {"coordinator": "psych", "extra": 1}, 400, "Extra inputs"),
        ("citizen", "goal", {"description": "x"}, 403, "health professionals"),
        ("planner", "goal", {"description": "x"}, 403, "health professionals"),
        ("nurse-other", "goal", {"description": "x"}, 404, "not known"),
    ]:  # fmt: skip
        stale = 'W/"1"' if status == 412 else None
        answer = _post(api, w, person, f"/workflow/care-plan/p-home/{section}", if_match=stale, **body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["issue"][0]["diagnostics"]
    assert api.get("/workflow/care-plan/p-home", headers=w.headers("gp")).headers["ETag"] == before
    assert api.get("/workflow/care-plan/p-home", headers=w.headers("nurse-other")).status_code == 404


def test_the_care_team_follows_the_tasks(world: tuple[World, TestClient]) -> None:
    w, api = world
    handed = _post(api, w, "phys", "/workflow/discharge", encounter="e-adm-imp", needs=[
        {"sector": "rehabilitation", "need": "Genoptræning efter fald", "due": "2026-12-21"},
        {"sector": "rehabilitation", "need": "Hjælpemidler", "due": "2026-12-14"},
    ]).json()  # fmt: skip
    first, second = (e["resource"] for e in handed["entry"])
    assert _post(api, w, "nurse", f"/workflow/follow-up/{first['id']}/accept").status_code == 403  # not hers

    from naer.access import accounts
    from naer.access.context import AccessContext
    from naer.coordination import followup
    from naer.store import resources as store
    from naer.store.errors import NotFound

    accounts.add(w.db, "rehab", "Test rehab", "home-care-nurse", None, practitioner="pr-rehab",
                 organization="rehab-0741", scopes="user/*.cruds")  # fmt: skip
    account = accounts.get(w.db, "rehab")
    assert account is not None
    rehab = AccessContext(accounts.principal(w.db, account, None, "127.0.0.1"), w.db, None)
    followup.move(w.db, rehab, first["id"], "accept")
    followup.move(w.db, rehab, second["id"], "accept")
    team = _resources(
        api.get("/workflow/care-plan/p-admitted", headers=w.headers("nurse")).json(), "CareTeam"
    )[0]
    assert [p["member"]["reference"] for p in team["participant"]] == ["Organization/rehab-0741"]
    followup.move(w.db, rehab, first["id"], "done", "Træning afsluttet")
    team = _resources(
        api.get("/workflow/care-plan/p-admitted", headers=w.headers("nurse")).json(), "CareTeam"
    )[0]
    assert len(team["participant"]) == 1  # one Task is still open: the unit stays
    followup.move(w.db, rehab, second["id"], "done")
    team = _resources(
        api.get("/workflow/care-plan/p-admitted", headers=w.headers("nurse")).json(), "CareTeam"
    )[0]
    assert team["participant"] == []
    assert "rehab-0741" in team["note"][0]["text"] and "2026-12-07" in team["note"][0]["text"]
    with pytest.raises(NotFound):  # its part done, the unit's access by the care team and the Tasks has ended
        store.read(w.db, rehab, "Patient", "p-admitted")


def test_the_course_on_one_page(world: tuple[World, TestClient]) -> None:
    from naer.access import accounts
    from naer.access.context import AccessContext
    from naer.coordination.course import course
    from naer.store.errors import NotFound

    w, _ = world

    def as_(name: str) -> AccessContext:
        account = accounts.get(w.db, name)
        assert account is not None
        return AccessContext(accounts.principal(w.db, account, None, "127.0.0.1"), w.db, None)

    found = course(w.db, as_("nurse"), "p-home", 2026)
    whats = {(r.what, r.who) for r in found.responsible}
    assert ("gp", "Lægehuset Samsø") in whats and ("stay", "Hjemmesygeplejen, Samsø") in whats
    assert any(i.code == "home-care" and i.sector == "municipality" for i in found.items)
    assert found.years == {2026: 1} and found.plan is not None  # the plan written by the first test
    assert course(w.db, as_("citizen"), "p-home", 2026).plan is not None  # the citizen's own
    for stranger in ("nurse-other", "citizen"):
        with pytest.raises(NotFound):
            course(w.db, as_(stranger), "p-discharged" if stranger == "citizen" else "p-home", 2026)
