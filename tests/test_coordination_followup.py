"""Discharge follow-up end to end through the API, on SQLite and PostgreSQL: a hand-over of follow-up
needs to the responsible organisations (also needs other than the admission's cause), who may move which
Task, If-Match, the organisations' overdue lists, and bad hand-overs that write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer import clock
from naer.store.tables import resources
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "followup")


NEEDS = [
    {"sector": "gp", "need": "Kontrol af blodtryk og nyrefunktion; justér diuretika", "due": "2026-12-14"},
    {"sector": "home-care", "need": "Daglig vægt og tilsyn med ødemer", "due": "2026-12-08"},
    {"sector": "rehabilitation", "need": "Genoptræning efter fald", "due": "2026-12-21"},
    {"sector": "social", "need": "Hjælp til boligsituationen (trapper)", "due": "2026-12-31",
     "about_admission": False},
    {"sector": "psychiatry", "need": "Opfølgning på depression", "due": "2027-01-15",
     "about_admission": False},
]  # fmt: skip


def _hand_over(api: TestClient, w: World, person: str, **body: Any) -> Any:
    return api.post("/workflow/discharge", headers=w.headers(person), content=orjson.dumps(body))


def _move(api: TestClient, w: World, person: str, task: str, transition: str, **body: Any) -> Any:
    headers = w.headers(person)
    if "if_match" in body:
        headers["If-Match"] = body.pop("if_match")
    return api.post(f"/workflow/follow-up/{task}/{transition}", headers=headers, content=orjson.dumps(body))


def test_anonymous_requests_are_told_to_sign_in_first(world: tuple[World, TestClient]) -> None:
    _, api = world
    for raw in (b'{"encounter": 5}', b"garbage", b""):
        answer = api.post("/workflow/discharge", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 401, raw
    for query in ("whose=evil", "limit=abc"):
        assert api.get(f"/workflow/inbox?{query}").status_code == 401


def _tasks(w: World) -> int:
    with w.db.connect() as con:
        return int(
            con.execute(
                select(func.count()).select_from(resources).where(resources.c.resource_type == "Task")
            ).scalar_one()
        )


def _by_sector(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for entry in bundle["entry"]:
        task = entry["resource"]
        sector = next(
            i["valueCoding"]["code"] for i in task["input"] if i["type"]["coding"][0]["code"] == "sector"
        )
        found[sector] = task
    return found


def test_a_hand_over_reaches_each_responsible_organisation(world: tuple[World, TestClient]) -> None:
    w, api = world
    made = _hand_over(api, w, "phys", encounter="e-adm-imp", needs=NEEDS)
    assert made.status_code == 201, made.text
    tasks = _by_sector(made.json())
    owners = {sector: t["owner"]["reference"] for sector, t in tasks.items()}
    assert owners == {
        "gp": "Organization/gp-0741",
        "home-care": "Organization/home-0741",
        "rehabilitation": "Organization/rehab-0741",
        "social": "Organization/muni-0741",
        "psychiatry": "Organization/psych",
    }
    groups = {t["groupIdentifier"]["value"] for t in tasks.values()}
    assert len(groups) == 1 and made.headers["Location"] == f"/workflow/discharge/{groups.pop()}"
    home = tasks["home-care"]
    assert (
        home["status"] == "requested" and home["restriction"]["period"]["end"] == "2026-12-08T23:59:59+01:00"
    )
    about = {s: next(i["valueBoolean"] for i in t["input"] if "valueBoolean" in i) for s, t in tasks.items()}
    assert about["social"] is False and about["gp"] is True
    assert home["requester"]["reference"] == "PractitionerRole/role-phys"
    assert home["encounter"]["reference"] == "Encounter/e-adm-imp"
    again = api.get(made.headers["Location"], headers=w.headers("phys"))
    assert again.status_code == 200 and len(again.json()["entry"]) == 5
    assert api.get(made.headers["Location"], headers=w.headers("nurse-other")).status_code == 404

    # The home-care nurse (owner) accepts hers; she may not move the GP's, nor cancel.
    accepted = _move(api, w, "nurse", home["id"], "accept", if_match='W/"1"')
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.headers["ETag"] == 'W/"2"'
    assert _move(api, w, "nurse", tasks["gp"]["id"], "accept").status_code == 403
    assert _move(api, w, "nurse", home["id"], "cancel").status_code == 403
    # The GP sees the citizen but owns not this Task: 403, before any question of versions (fault 11).
    assert _move(api, w, "gp", home["id"], "done", if_match='W/"1"').status_code == 403
    # A stale If-Match changes nothing.
    assert _move(api, w, "nurse", home["id"], "done", if_match='W/"1"').status_code == 412
    done = _move(api, w, "nurse2", home["id"], "done", text="Vægt stabil, ingen ødemer")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["note"][0]["text"] == "Vægt stabil, ingen ødemer"
    assert _move(api, w, "nurse", home["id"], "accept").status_code == 409  # done is done

    # The GP refuses with a reason (a reason is required); the department cancels the rehabilitation.
    assert _move(api, w, "gp", tasks["gp"]["id"], "refuse").status_code == 400
    refused = _move(api, w, "gp", tasks["gp"]["id"], "refuse", text="Borgeren er skiftet til anden læge")
    assert refused.status_code == 200 and refused.json()["status"] == "rejected"
    assert refused.json()["statusReason"]["text"] == "Borgeren er skiftet til anden læge"
    assert _move(api, w, "phys", tasks["rehabilitation"]["id"], "cancel").json()["status"] == "cancelled"
    assert _move(api, w, "phys", tasks["social"]["id"], "accept").status_code == 403  # not the owner


def test_overdue_follow_up_is_in_the_organisations_inbox(world: tuple[World, TestClient]) -> None:
    w, api = world
    made = _hand_over(api, w, "phys", encounter="e-adm-imp", needs=[NEEDS[1]]).json()
    task = made["entry"][0]["resource"]
    inbox = api.get("/workflow/inbox", headers=w.headers("nurse")).json()
    assert task["id"] in [t["id"] for t in inbox["lists"]["new"]["tasks"]]
    assert task["id"] not in [t["id"] for t in inbox["lists"]["overdue"]["tasks"]]
    clock.set_clock(NOW + timedelta(days=2))  # Wednesday: the need was due Tuesday
    inbox = api.get("/workflow/inbox", headers=w.headers("nurse")).json()
    assert task["id"] in [t["id"] for t in inbox["lists"]["overdue"]["tasks"]]
    assert inbox["lists"]["overdue"]["count"] >= 1
    other = api.get("/workflow/inbox", headers=w.headers("nurse-other")).json()
    assert task["id"] not in [t["id"] for lst in other["lists"].values() for t in lst["tasks"]]


@pytest.mark.parametrize(
    ("person", "body", "status", "message"),
    [
        ("phys", {"encounter": "e-nowhere", "needs": NEEDS[:1]}, 404, "Encounter/e-nowhere is not known"),
        ("nurse", {"encounter": "e-adm-imp", "needs": NEEDS[:1]}, 403, "only the department that discharges"),
        ("phys", {"encounter": "e-adm-hh", "needs": NEEDS[:1]}, 422, "is not a hospital stay"),
        ("phys", {"encounter": "e-old-imp", "needs": NEEDS[:1]}, 409, "a hand-over is made at discharge"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "due": "-0"}]}, 400, "YYYY-MM-DD"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "about_admission": 1}]}, 400,
         "valid boolean"),
        ("phys", {"encounter": "e-adm-imp", "needs": []}, 400, "needs: List should have at least 1 item"),
        ("phys", {"encounter": "e-adm-imp", "needs": NEEDS[:1] * 31}, 400, "at most 30 items"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "due": "2026-12-06"}]}, 400, "has passed"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "due": "2028-01-01"}]}, 400,
         "more than a year ahead"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "due": "2026-13-01"}]}, 400,
         "needs.0.due"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "sector": "astrology"}]}, 400,
         "unknown sector 'astrology'"),
        ("phys", {"encounter": "e-adm-imp", "needs": [{**NEEDS[0], "need": " "}]}, 400,
         "need must not be empty"),
        ("phys", {"encounter": "e-adm-imp", "needs": [NEEDS[0], {**NEEDS[1], "organization": "org-gone"}]},
         422, "no active Organization/org-gone"),
        ("citizen", {"encounter": "e-adm-imp", "needs": NEEDS[:1]}, 403, ""),
    ],
)  # fmt: skip
def test_bad_hand_overs_write_nothing(
    world: tuple[World, TestClient], person: str, body: dict[str, Any], status: int, message: str
) -> None:
    w, api = world
    before = _tasks(w)
    answer = _hand_over(api, w, person, **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert message in answer.json()["issue"][0]["diagnostics"]
    assert _tasks(w) == before  # all or none: the valid first need of a refused hand-over is not written
