"""Home measurements against the thresholds of the citizen's care plan, on SQLite and PostgreSQL: limits
low and high, a rise over days, one Task per measurement outside (however often it is checked) for
whoever holds the medical responsibility at home, else the GP clinic; bad thresholds refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from naer import clock
from naer.coordination import measurements
from naer.store import resources as store
from naer.store.context import SYSTEM
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)

LOINC = "http://loinc.org"


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def _observation(rid: str, patient: str, code: str, days_ago: float, value: float | None = None,
                 unit: str = "%", bp: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
    made: dict[str, Any] = {
        "resourceType": "Observation", "id": rid, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": (NOW - timedelta(days=days_ago)).isoformat(),
    }  # fmt: skip
    if bp:
        made["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": _quantity(bp[0], "mm[Hg]"),
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": _quantity(bp[1], "mm[Hg]"),
            },
        ]
    else:
        made["valueQuantity"] = _quantity(float(value or 0), unit)
    return made


def _prepare(made: World) -> None:
    clock.set_clock(NOW)
    for obs in [
        _observation("o-spo2-ok", "p-home", "59408-5", 3, 95),
        _observation("o-spo2-low", "p-home", "59408-5", 1, 86),
        _observation("o-weight-1", "p-home", "29463-7", 4, 80.0, "kg"),
        _observation("o-weight-2", "p-home", "29463-7", 2, 81.0, "kg"),
        _observation("o-weight-3", "p-home", "29463-7", 1, 82.6, "kg"),
        _observation("o-bp-high", "p-home", "85354-9", 2, bp=(190, 95)),
        _observation("o-bp-ok", "p-home", "85354-9", 1, bp=(150, 85)),
        _observation("o-old", "p-home", "59408-5", 40, 80),  # too old to check
    ]:
        store.update(made.db, SYSTEM, "Observation", obs["id"], obs)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "measurements", _prepare)


def _post(api: TestClient, w: World, person: str, path: str, **body: Any) -> Any:
    return api.post(path, headers=w.headers(person), content=orjson.dumps(body))


THRESHOLDS = [
    {"measure": "spo2", "low": 90},
    {"measure": "systolic", "low": 90, "high": 180},
    {"measure": "weight", "rise": 2, "days": 3},
]


def test_measurements_outside_the_plans_thresholds_become_tasks(world: tuple[World, TestClient]) -> None:
    w, api = world
    # No thresholds yet: nothing to check.
    assert _post(api, w, "nurse", "/workflow/measurements/check", patient="p-home").json()["entry"] == []
    set_ = _post(api, w, "gp", "/workflow/care-plan/p-home/thresholds", thresholds=THRESHOLDS)
    assert set_.status_code == 200, set_.text
    made = _post(api, w, "nurse", "/workflow/measurements/check", patient="p-home")
    assert made.status_code == 200, made.text
    tasks = {t["focus"]["reference"]: t for t in (e["resource"] for e in made.json()["entry"])}
    assert set(tasks) == {"Observation/o-spo2-low", "Observation/o-bp-high", "Observation/o-weight-3"}
    assert tasks["Observation/o-spo2-low"]["description"] == "Iltmætning 86 % (grænse mindst 90 %)"
    assert "steget 2,6 kg på 3 dage" in tasks["Observation/o-weight-3"]["description"]
    assert "Systolisk blodtryk 190 mm[Hg] (grænse højst 180" in tasks["Observation/o-bp-high"]["description"]
    assert {t["owner"]["reference"] for t in tasks.values()} == {
        "Organization/gp-0741"
    }  # no one else holds it
    # Checked again (the server's rounds, the command): nothing doubled.
    assert _post(api, w, "nurse", "/workflow/measurements/check", patient="p-home").json()["entry"] == []
    assert measurements.check_all(w.db) == []
    inbox = api.get("/workflow/inbox", headers=w.headers("gp")).json()
    assert {t["id"] for t in tasks.values()} <= {t["id"] for t in inbox["lists"]["new"]["tasks"]}


def test_the_holder_of_the_responsibility_at_home_gets_the_task(world: tuple[World, TestClient]) -> None:
    w, api = world
    assert _post(api, w, "phys", "/workflow/responsibility", patient="p-admitted", setting="home",
                 start="2026-12-07").status_code == 201  # fmt: skip
    assert _post(api, w, "phys", "/workflow/care-plan/p-admitted/thresholds",
                 thresholds=[{"measure": "spo2", "low": 92}]).status_code == 200  # fmt: skip
    store.update(
        w.db, SYSTEM, "Observation", "o-adm", _observation("o-adm", "p-admitted", "59408-5", 0.01, 89)
    )
    made = measurements.check(w.db, "p-admitted")
    assert [t["owner"]["reference"] for t in made] == ["Organization/dept-med"]


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ([{"measure": "mood", "low": 1}], "unknown measure 'mood'"),
        ([{"measure": "spo2"}], "give low, high or rise"),
        ([{"measure": "spo2", "low": 95, "high": 90}], "low must lie below high"),
        ([{"measure": "weight", "rise": 2, "days": 99}], "less than or equal to 30"),
        ([{"measure": "spo2", "low": 1e300}], "less than or equal to 100000"),
        ([], "at least 1 item"),
        ([{"measure": "spo2", "low": True}], "valid number"),
        ([{"measure": "spo2", "low": "90"}], "valid number"),
        ([{"measure": "weight", "rise": -2, "days": 3}], "a rise is more than 0"),
        ([{"measure": "weight", "rise": 2}], "a rise goes with days"),
        ([{"measure": "spo2", "low": 90}, {"measure": "spo2", "low": 80}], "give each measure once"),
    ],
)
def test_bad_thresholds_are_refused(world: tuple[World, TestClient], thresholds: Any, message: str) -> None:
    w, api = world
    before = api.get("/workflow/care-plan/p-home", headers=w.headers("gp")).headers["ETag"]
    answer = _post(api, w, "gp", "/workflow/care-plan/p-home/thresholds", thresholds=thresholds)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["issue"][0]["diagnostics"]
    assert api.get("/workflow/care-plan/p-home", headers=w.headers("gp")).headers["ETag"] == before


def test_a_citizen_one_may_not_know_is_not_checked(world: tuple[World, TestClient]) -> None:
    w, api = world
    assert _post(api, w, "nurse-other", "/workflow/measurements/check", patient="p-home").status_code == 404
    for person in ("citizen", "planner"):  # checking makes clinical Tasks: the clinicians' to do
        assert _post(api, w, person, "/workflow/measurements/check", patient="p-home").status_code == 403


def test_the_course_shows_each_months_measurements(world: tuple[World, TestClient]) -> None:
    from naer.access import accounts
    from naer.access.context import AccessContext
    from naer.coordination.course import course

    w, _ = world
    account = accounts.get(w.db, "nurse")
    assert account is not None
    context = AccessContext(accounts.principal(w.db, account, None, "127.0.0.1"), w.db, None)
    months = [i for i in course(w.db, context, "p-home", 2026).items if i.kind == "measurement"]
    assert [m.when for m in months] == ["2026-12-01", "2026-10-01"]  # o-old is 40 days old: October
    assert months[0].detail.startswith("7: ") and "iltmætning 86–95 %" in months[0].detail
    assert "vægt 80–82,6 kg" in months[0].detail
