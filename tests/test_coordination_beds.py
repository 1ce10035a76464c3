"""Municipal acute beds end to end, on SQLite and PostgreSQL: beds of a unit, admission to a free bed
with the responsible physician, a full unit refused (also when two nurses admit at the same moment),
discharge, occupancy now and over time, bad input that writes nothing, and `naer coordination beds`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer.access import accounts
from naer.access.context import AccessContext
from naer.coordination import beds
from naer.store.errors import Conflict
from naer.store.tables import resources
from tests.conftest import run_naer
from tests.coordination_world import World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)


def _prepare(made: World) -> None:
    beds.provide_beds(made.db, "acute-0741", 2)
    beds.provide_beds(made.db, "acute-small", 1)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "beds", _prepare)


def _post(api: TestClient, w: World, person: str, path: str, **body: Any) -> Any:
    return api.post(path, headers=w.headers(person), content=orjson.dumps(body))


def _encounters(w: World) -> int:
    with w.db.connect() as con:
        query = select(func.count()).select_from(resources).where(resources.c.resource_type == "Encounter")
        return int(con.execute(query).scalar_one())


def test_admission_fills_the_unit_and_a_full_unit_is_refused(world: tuple[World, TestClient]) -> None:
    w, api = world
    first = _post(api, w, "nurse", "/workflow/acute-beds/admit", patient="p-home", unit="acute-0741",
                  physician="role-gp", reason="Pneumoni, IV antibiotika")  # fmt: skip
    assert first.status_code == 201, first.text
    stay = first.json()
    assert stay["location"][0]["location"]["reference"] == "Location/acute-0741-bed-1"
    assert stay["participant"][0]["individual"]["reference"] == "PractitionerRole/role-gp"
    assert stay["type"][0]["coding"][0]["code"] == "acute-bed" and stay["status"] == "in-progress"
    before = _encounters(w)
    again = _post(api, w, "nurse", "/workflow/acute-beds/admit", patient="p-home", unit="acute-0741",
                  physician="role-gp")  # fmt: skip
    assert again.status_code == 409 and "already in an acute bed" in again.text
    second = _post(api, w, "nurse", "/workflow/acute-beds/admit", patient="p-admitted", unit="acute-0741",
                   physician="role-gp")  # fmt: skip
    assert second.status_code == 201 and second.json()["location"][0]["location"]["reference"].endswith(
        "bed-2"
    )
    full = _post(api, w, "nurse", "/workflow/acute-beds/admit", patient="p-discharged", unit="acute-0741",
                 physician="role-gp")  # fmt: skip
    assert full.status_code == 409
    assert "is full: all 2 beds are taken" in full.json()["issue"][0]["diagnostics"]
    assert _encounters(w) == before + 1

    now = api.get("/workflow/acute-beds/occupancy?unit=acute-0741", headers=w.headers("acute-nurse")).json()
    assert (now["occupied"], now["free"], len(now["beds"])) == (2, 0, 2)
    assert now["days"][-1] == {"day": "2026-12-07", "occupied": 2}  # both began at 10:00, before noon


def test_discharge_frees_the_bed(world: tuple[World, TestClient]) -> None:
    w, api = world
    stays = beds._open_stays(w.db, "acute-0741")
    home = next(s for s in stays if s["subject"]["reference"] == "Patient/p-home")
    # The acute unit's nurse has the acute-bed relation now (an open stay at her unit).
    assert api.get("/fhir/Patient/p-home", headers=w.headers("acute-nurse")).status_code == 200
    assert _post(api, w, "acute-nurse", f"/workflow/acute-beds/{home['id']}/discharge",
                 disposition="teleport").status_code == 400  # fmt: skip
    done = _post(api, w, "acute-nurse", f"/workflow/acute-beds/{home['id']}/discharge", disposition="home")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "finished" and done.json()["location"][0]["status"] == "completed"
    # The stay is over, so is the unit's relation (404 for its nurse); home care still sees it: 409.
    gone = _post(api, w, "acute-nurse", f"/workflow/acute-beds/{home['id']}/discharge", disposition="home")
    assert gone.status_code == 404
    twice = _post(api, w, "nurse", f"/workflow/acute-beds/{home['id']}/discharge", disposition="home")
    assert twice.status_code == 409 and "has ended already" in twice.text
    not_a_bed = _post(api, w, "nurse", "/workflow/acute-beds/e-home-hh/discharge", disposition="home")
    assert not_a_bed.status_code == 400 and "not an acute-bed stay" in not_a_bed.text
    admitted = _post(api, w, "nurse", "/workflow/acute-beds/admit", patient="p-discharged", unit="acute-0741",
                     physician="role-gp")  # fmt: skip
    assert admitted.status_code == 201 and admitted.json()["location"][0]["location"]["reference"].endswith(
        "bed-1"
    )


@pytest.mark.parametrize(
    ("person", "body", "status", "message"),
    [
        ("nurse", {"unit": "acute-nowhere"}, 422, "no acute unit Organization/acute-nowhere"),
        ("nurse", {"physician": "role-nobody"}, 422, "no active physician"),
        ("nurse", {"patient": "p-none"}, 404, "not known"),
        ("planner", {}, 403, "nurses or a physician"),
        ("nurse", {"unit": "home-0741"}, 422, "is not an acute-bed unit"),
        ("nurse", {"physician": "role-nurse2"}, 422, "no active physician"),  # a nurse's role
    ],
)
def test_bad_admissions_write_nothing(
    world: tuple[World, TestClient], person: str, body: dict[str, Any], status: int, message: str
) -> None:
    w, api = world
    before = _encounters(w)
    full = {"patient": "p-home", "unit": "acute-small", "physician": "role-gp", **body}
    answer = _post(api, w, person, "/workflow/acute-beds/admit", **full)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["issue"][0]["diagnostics"]
    assert _encounters(w) == before


def test_two_admissions_at_once_never_share_the_last_bed(world: tuple[World, TestClient]) -> None:
    w, _ = world
    account = accounts.get(w.db, "nurse")
    assert account is not None
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def admit(patient: str) -> None:
        context = AccessContext(accounts.principal(w.db, account, None, "127.0.0.1"), w.db, None)
        start.wait()
        try:
            beds.admit(w.db, context, patient, "acute-small", "role-gp")
            outcomes.append("admitted")
        except Conflict:
            outcomes.append("full")

    threads = [threading.Thread(target=admit, args=(p,)) for p in ("p-home", "p-admitted")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted", "full"]
    assert beds.occupancy(w.db, "acute-small").occupied == 1


def test_occupancy_over_time_and_who_may_see_it(world: tuple[World, TestClient]) -> None:
    w, api = world
    found = api.get("/workflow/acute-beds/occupancy?unit=acute-0741&start=2026-12-01&end=2026-12-07",
                    headers=w.headers("nurse")).json()  # fmt: skip
    assert [d["day"] for d in found["days"]] == [f"2026-12-0{n}" for n in range(1, 8)]
    assert found["days"][-1]["occupied"] == 2 and found["days"][0]["occupied"] == 0
    assert (
        api.get("/workflow/acute-beds/occupancy?unit=acute-0741", headers=w.headers("planner")).status_code
        == 403
    )
    bad = api.get("/workflow/acute-beds/occupancy?unit=acute-0741&start=2020-01-01&end=2026-12-07",
                  headers=w.headers("nurse"))  # fmt: skip
    assert bad.status_code == 400
    for query in (
        "end=9999-12-31",
        "start=9999-12-30&end=9999-12-31",
        "start=0001-01-01",
    ):  # the tester's 500
        far = api.get(f"/workflow/acute-beds/occupancy?unit=acute-0741&{query}", headers=w.headers("nurse"))
        assert far.status_code == 400 and "from 1900 to 2100" in far.text, query
    for query in ("start=20241228", "start=2024-W52-1", "end=2024-1-1"):
        odd = api.get(f"/workflow/acute-beds/occupancy?unit=acute-0741&{query}", headers=w.headers("nurse"))
        assert odd.status_code == 400 and "YYYY-MM-DD" in odd.text, query
    for unit in ("home-0741", "nowhere"):
        assert (
            api.get(f"/workflow/acute-beds/occupancy?unit={unit}", headers=w.headers("nurse")).status_code
            == 422
        )


def test_the_beds_command(world: tuple[World, TestClient], tmp_path: Path) -> None:
    w, _ = world
    done = run_naer("coordination", "beds", "acute-0741", "--beds", "3", "--url", w.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "acute-0741: 3 beds" in done.stdout
    refused = run_naer("coordination", "beds", "acute-0741", "--beds", "0", "--url", w.url, cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "1 to 200 beds" in refused.stderr
    assert beds.occupancy(w.db, "acute-0741").free == 1  # 3 beds, 2 taken
