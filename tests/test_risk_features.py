"""Risk features as of a reference day on the hand-made population (tests/data/indicators): values by hand,
and no leakage: data after the day changes no feature."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from naer.errors import UserError
from naer.indicators import engine
from naer.indicators.run import build_warehouse
from naer.risk.features import charlson, features, prepare, scheme

POPULATION = Path(__file__).parent / "data" / "indicators"
DAY = date(2023, 7, 1)
# the window runs past the data so that the day has its year after it (the data ends in December 2023)
WINDOW = engine.Window(date(2022, 1, 1), date(2024, 7, 2))
OUTCOMES = {"acute_admission_12m", "preventable_admission_12m"}


def _features(data: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    warehouse = tmp / f"{data.name}.duckdb"
    build_warehouse(data, warehouse)
    with engine.open_warehouse(warehouse) as con:
        prepare(con, WINDOW)
        return {r["patient_id"]: r for r in features(con, DAY, WINDOW).to_pylist()}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _features(POPULATION, tmp_path_factory.mktemp("risk"))


def test_population_on_the_day(rows: dict[str, dict[str, Any]]) -> None:
    assert "p06" not in rows  # moved away on 30 June
    assert "p10" in rows  # dies on 5 July: alive on the day
    assert rows["p20"]["age"] == 0 and rows["p01"]["age"] == 65 and rows["p02"]["age"] == 65


def test_history_before_the_day(rows: dict[str, dict[str, Any]]) -> None:
    p07 = rows["p07"]
    assert (p07["acute_admissions_6m"], p07["acute_admissions_12m"]) == (2, 2)
    assert p07["bed_days_12m"] == 7  # 5 + 2 days
    assert p07["days_since_discharge"] == (DAY - date(2023, 5, 12)).days
    assert rows["p12"]["acute_admissions_12m"] == 1  # the planned cancer admission is not acute
    assert rows["p15"]["gp_contacts_12m"] == 0  # its GP contact is in September
    assert rows["p03"]["days_since_discharge"] == (DAY - date(2023, 4, 3)).days


def test_charlson_from_diagnoses_before_the_day(rows: dict[str, dict[str, Any]]) -> None:
    p11 = rows["p11"]  # COPD in February (1), lung cancer in February (2)
    assert (p11["charlson_index"], p11["conditions"]) == (3, ["chronic_pulmonary", "malignancy"])
    assert rows["p17"]["charlson_index"] == 0  # diabetes is diagnosed in October, after the day
    assert rows["p12"]["conditions"] == ["malignancy"]


def test_conditions_and_comorbidity_counts(rows: dict[str, dict[str, Any]]) -> None:
    p11 = rows["p11"]  # COPD and lung cancer, both in February
    assert (p11["copd"], p11["cancer"], p11["diabetes"], p11["chronic_conditions"]) == (True, True, False, 2)
    assert p11["elixhauser_conditions"] == 2  # chronic pulmonary disease, solid tumour
    assert rows["p17"]["diabetes"] is False  # diagnosed after the day
    assert len(scheme("elixhauser")["conditions"]) == 31


def test_outcomes_in_the_year_after(rows: dict[str, dict[str, Any]]) -> None:
    assert rows["p17"]["acute_admission_12m"] is True  # October
    assert rows["p10"]["acute_admission_12m"] is True  # admitted on the day itself
    assert rows["p07"]["acute_admission_12m"] is False


def _encounter(eid: str, pid: str, cls: str, kind: str, start: str, end: str, org: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": cls},
        "type": [
            {"coding": [{"system": "https://naer.example.org/fhir/CodeSystem/contact-type", "code": kind}]}
        ],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": f"{start}:00+02:00", "end": f"{end}:00+02:00"},
        "serviceProvider": {"reference": f"Organization/{org}"},
    }


def _fact(oid: str, pid: str, code: str, day: str, value: Any) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "social-history"}]}],
        "code": {"coding": [{"code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
    }
    if isinstance(value, bool):
        observation["valueBoolean"] = value
    else:
        observation["valueCodeableConcept"] = {"coding": [{"code": value}]}
    return observation


def test_no_leakage(tmp_path: Path, rows: dict[str, dict[str, Any]]) -> None:
    """Add a year of events after the day (admissions with grave diagnoses, GP contacts, home care, a new
    fact): every feature stays as it was; only outcomes may change."""
    data = tmp_path / "later"
    shutil.copytree(POPULATION, data, ignore=shutil.ignore_patterns("*.py"))
    encounters, conditions, observations = [], [], []
    for pid in rows:
        eid = f"later-{pid}"
        admission = _encounter(
            eid, pid, "IMP", "acute-admission", "2023-07-01T00:10", "2023-07-09T10:00", "auh-med"
        )
        admission["priority"] = {"coding": [{"code": "EM"}]}
        admission["diagnosis"] = [{"condition": {"reference": f"Condition/{eid}-dx"}, "rank": 1}]
        encounters.append(admission)
        conditions.append(
            {
                "resourceType": "Condition",
                "id": f"{eid}-dx",
                "subject": {"reference": f"Patient/{pid}"},
                "category": [{"coding": [{"code": "problem-list-item"}]}],
                "onsetDateTime": "2023-07-01",
                "code": {"coding": [{"system": "urn:oid:1.2.208.176.2.4", "code": "DC787"}]},
            }
        )
        encounters.append(
            _encounter(
                f"{eid}-gp", pid, "AMB", "gp-consultation", "2023-07-01T08:00", "2023-07-01T08:15", "gp-a"
            )
        )
        observations.append(_fact(f"{eid}-alone", pid, "living-alone", "2023-07-02", True))
    for name, extra in (("Encounter", encounters), ("Condition", conditions), ("Observation", observations)):
        with (data / f"{name}.ndjson").open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in extra)
    later = _features(data, tmp_path)
    assert set(later) == set(rows)
    for pid, before in rows.items():
        after = later[pid]
        assert {k: v for k, v in after.items() if k not in OUTCOMES} == {
            k: v for k, v in before.items() if k not in OUTCOMES
        }, pid
        assert after["acute_admission_12m"] is True  # the added admission is an outcome


def test_reference_day_needs_a_year_of_history(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    build_warehouse(POPULATION, warehouse)
    with engine.open_warehouse(warehouse) as con:
        window = prepare(con)
        with pytest.raises(UserError, match="too short; it needs a year of data before it"):
            features(con, date(2023, 1, 1), window, outcome=False)
    with engine.open_warehouse(warehouse) as con:
        window = prepare(con, WINDOW)
        with pytest.raises(UserError, match=r"outside the data .*so a day from 2023-01-01 to 2023-07-03"):
            features(con, date(2023, 7, 10), window)


def test_charlson_definition() -> None:
    conditions = charlson()["conditions"]
    assert len(conditions) == 17
    assert conditions["metastatic"]["weight"] == 6 and conditions["metastatic"]["replaces"] == "malignancy"


@pytest.mark.parametrize("order", [1, -1], ids=["recorded-order", "reversed"])
def test_same_day_facts_resolve_the_same_way_whatever_the_order(tmp_path: Path, order: int) -> None:
    """Two contradictory facts of one day: the later recorded (the higher id) holds, however the rows come
    (arg_max over the day alone picked either, so a feature could change between two runs)."""
    data = tmp_path / f"tie{order}"
    shutil.copytree(POPULATION, data, ignore=shutil.ignore_patterns("*.py"))
    facts = [
        _fact("tie-1", "p01", "living-alone", "2023-03-01", False),
        _fact("tie-2", "p01", "living-alone", "2023-03-01", True),
        _fact("tie-3", "p01", "82589-3", "2023-03-01", "higher"),
        _fact("tie-4", "p01", "82589-3", "2023-03-01", "basic"),
    ][::order]
    with (data / "Observation.ndjson").open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in facts)
    p01 = _features(data, tmp_path)["p01"]
    assert (p01["lives_alone"], p01["education"]) == (True, "basic")
