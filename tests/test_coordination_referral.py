"""Fast diagnostic referral from general practice end to end through the API, on SQLite and PostgreSQL:
the tracks' answer times in working days, the department's booking and answer back to the GP, who may
move what, and bad referrals that write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer.store.tables import resources
from tests.coordination_world import World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "referral")


def _post(api: TestClient, w: World, person: str, path: str, **body: Any) -> Any:
    return api.post(path, headers=w.headers(person), content=orjson.dumps(body))


def _task(answer: Any) -> dict[str, Any]:
    return answer.json()["entry"][0]["resource"]  # type: ignore[no-any-return]


def _count(w: World, kind: str) -> int:
    with w.db.connect() as con:
        query = select(func.count()).select_from(resources).where(resources.c.resource_type == kind)
        return int(con.execute(query).scalar_one())


def test_a_fast_track_referral_and_its_answer(world: tuple[World, TestClient]) -> None:
    w, api = world
    made = _post(api, w, "gp", "/workflow/referral", patient="p-home", department="dept-med",
                 track="fast-track", suspicion="Vægttab 8 kg på 3 måneder, træthed, anæmi.")  # fmt: skip
    assert made.status_code == 201, made.text
    task = _task(made)
    # Monday 7 December, 10:00: six working days -> Tuesday 15 December at closing time (15:30).
    assert task["restriction"]["period"]["end"] == "2026-12-15T14:30:00Z"
    request = made.json()["entry"][1]["resource"]
    assert request["resourceType"] == "ServiceRequest" and request["priority"] == "asap"
    assert request["performer"][0]["reference"] == "Organization/dept-med"
    path = f"/workflow/referral/{task['id']}"
    assert api.get(path, headers=w.headers("phys")).status_code == 200  # the service-request relation
    assert api.get(path, headers=w.headers("phys-geri")).status_code == 404
    assert _post(api, w, "gp", f"{path}/answer", text="?").status_code == 403
    assert _post(api, w, "phys", f"{path}/book").status_code == 400  # a booking says when
    booked = _post(api, w, "phys", f"{path}/book", text="CT thorax/abdomen torsdag 10/12 kl. 9.00")
    assert booked.status_code == 200 and booked.json()["entry"][0]["resource"]["status"] == "in-progress"
    assert _post(api, w, "gp", f"{path}/close").status_code == 409  # not answered yet
    answered = _post(
        api, w, "phys", f"{path}/answer", text="CT uden tegn på malignitet. Råd: jernmangel; start jern."
    )
    assert answered.status_code == 200, answered.text
    texts = [e["resource"]["payload"][0]["contentString"] for e in answered.json()["entry"][2:]]
    assert texts == [
        "CT thorax/abdomen torsdag 10/12 kl. 9.00",
        "CT uden tegn på malignitet. Råd: jernmangel; start jern.",
    ]
    inbox = api.get("/workflow/inbox?whose=person", headers=w.headers("gp")).json()
    assert task["id"] in [t["id"] for t in inbox["lists"]["answered"]["tasks"]]
    clinic = api.get("/workflow/inbox", headers=w.headers("gp")).json()  # the clinic's inbox has it too
    assert task["id"] in [t["id"] for t in clinic["lists"]["answered"]["tasks"]]
    elsewhere = api.get("/workflow/inbox", headers=w.headers("nurse")).json()
    assert task["id"] not in [t["id"] for lst in elsewhere["lists"].values() for t in lst["tasks"]]
    closed = _post(api, w, "gp", f"{path}/close")
    assert closed.status_code == 200 and closed.json()["entry"][1]["resource"]["status"] == "completed"
    assert api.get(path, headers=w.headers("phys")).status_code == 404  # the department's part is over


def test_the_standard_track_and_bad_referrals(world: tuple[World, TestClient]) -> None:
    w, api = world
    standard = _post(api, w, "gp", "/workflow/referral", patient="p-home", department="dept-med",
                      track="standard", suspicion="Hoste i 6 uger")  # fmt: skip
    assert _task(standard)["restriction"]["period"]["end"] == "2027-01-06T09:00:00Z"  # 30 days (720 hours)
    before = (_count(w, "Task"), _count(w, "ServiceRequest"))
    for person, body, status, message in [
        ("nurse", {}, 403, "from general practice"),
        ("gp", {"track": "tomorrow"}, 400, "unknown track 'tomorrow'"),
        ("gp", {"department": "home-0741"}, 422, "is not a hospital department"),
        ("gp", {"patient": "p-none"}, 404, "not known"),
        ("gp", {"suspicion": ""}, 400, "suspicion must not be empty"),
    ]:
        full = {
            "patient": "p-home",
            "department": "dept-med",
            "track": "fast-track",
            "suspicion": "s",
            **body,
        }
        answer = _post(api, w, person, "/workflow/referral", **full)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["issue"][0]["diagnostics"]
    assert (_count(w, "Task"), _count(w, "ServiceRequest")) == before
