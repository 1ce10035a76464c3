"""The platform's view library on a tiny hand-written data set (tests/data/views), every row asserted.

Also: the same views run over the Samsø set and over another generator's data (Synthea, US coding) without
error, and the warehouse's SQL views join them as documented.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from naer.views.compile import compile_view
from naer.views.definition import load_view
from naer.views.run import derived_queries, load_folder, query_rows, run_to_warehouse
from naer.views.source import files_for, source_sql

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "naer" / "views" / "library"
DATA = Path(__file__).parent / "data" / "views"
FIXTURES = Path(
    os.environ.get("NAER_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
SYNTHEA = FIXTURES / "synthea" / "10-patients"


def rows(view: str, data: Path = DATA) -> list[dict[str, object]]:
    return sorted(
        query_rows(load_view(LIBRARY / f"{view}.json"), data)[1], key=lambda r: str(list(r.values()))
    )


def test_patient() -> None:
    assert rows("patient") == [
        {
            "id": "p1",
            "cpr": "6110360000",
            "sex": "female",
            "birth_date": "1936-10-01",
            "deceased": True,
            "death_date": "2024-04-01T10:00:00+02:00",
            "municipality_code": "0741",  # from the home address, not the old one
            "postal_code": "8305",
            "gp_clinic_id": "gp-1",
        },
        {
            "id": "p2",
            "cpr": None,
            "sex": "male",
            "birth_date": "1990-12-31",
            "deceased": False,
            "death_date": None,
            "municipality_code": None,
            "postal_code": None,
            "gp_clinic_id": None,  # listed with a Practitioner, not a clinic
        },
        {
            "id": "p3",
            "cpr": None,
            "sex": None,
            "birth_date": "2000",
            "deceased": True,
            "death_date": None,
            "municipality_code": None,
            "postal_code": None,
            "gp_clinic_id": None,
        },
    ]


def test_residence() -> None:
    """One row per home address (not the old one), with its period; citizens without one have no rows."""
    assert rows("residence") == [
        {
            "patient_id": "p1",
            "position": 1,
            "municipality_code": "0741",
            "postal_code": "8305",
            "start": None,
            "end": None,
        }
    ]


def test_encounter() -> None:
    got = {r["id"]: r for r in rows("encounter")}
    assert got["e2"] == {
        "id": "e2",
        "patient_id": "p1",
        "status": "finished",
        "class": "IMP",
        "contact_type": "acute-admission",  # Nær's system, though a SNOMED code comes first
        "type_code": "1",
        "priority": "EM",
        "start": "2024-02-01T05:00:00+01:00",
        "end": "2024-02-03T12:00:00+01:00",
        "service_provider_id": "hosp-med",
        "part_of_id": None,
        "admit_source": "emd",
        "discharge_disposition": "home",
    }
    assert got["e3"]["part_of_id"] == "e2" and got["e3"]["end"] is None
    assert got["e1"]["contact_type"] == "gp-consultation" and got["e1"]["priority"] is None
    # Conditional references (Synthea writes them) are not keys: null, not a crash.
    assert got["e4"]["patient_id"] is None and got["e4"]["service_provider_id"] is None
    assert len(got) == 4


def test_encounter_diagnosis() -> None:
    assert rows("encounter_diagnosis") == [
        {
            "encounter_id": "e2",
            "patient_id": "p1",
            "condition_id": "c1",
            "rank": 2,
            "position": 2,
            "use": None,
        },
        {
            "encounter_id": "e2",
            "patient_id": "p1",
            "condition_id": "c2",
            "rank": 1,
            "position": 1,
            "use": "DD",
        },
    ]


def test_condition() -> None:
    got = {r["id"]: r for r in rows("condition")}
    assert got["c1"] == {
        "id": "c1",
        "patient_id": "p1",
        "encounter_id": None,
        "sks_code": "DJ441",
        "code_system": "urn:oid:1.2.208.176.2.4",
        "code": "DJ441",
        "display": "KOL",
        "category": "problem-list-item",
        "clinical_status": "active",
        "verification_status": None,
        "onset": "2019-05-01",
        "abatement": None,
        "recorded_date": None,
    }
    # The SKS code is found though another system's code comes first.
    assert (got["c2"]["sks_code"], got["c2"]["code"], got["c2"]["encounter_id"]) == (
        "DJ189",
        "233604007",
        "e2",
    )


def test_home_measurement() -> None:
    got = [(r["observation_id"], r["code"], r["value"], r["unit"]) for r in rows("home_measurement")]
    # One row per measured value: the weight, and the panel's two components (not the panel itself);
    # social-history and laboratory observations are not home measurements.
    assert sorted(got) == [
        ("o1", "29463-7", 71.5, "kg"),
        ("o2", "8462-4", 85.0, "mm[Hg]"),
        ("o2", "8480-6", 150.0, "mm[Hg]"),
    ]


def test_social_fact() -> None:
    got = [(r["observation_id"], r["fact"], r["value_code"], r["value_boolean"]) for r in rows("social_fact")]
    assert got == [
        ("o3", "82589-3", "basic", None),
        ("o4", "82589-3", "upper-secondary", None),
        ("o5", "living-alone", None, True),
    ]


def test_organization() -> None:
    got = {
        r["id"]: (r["sector"], r["kind"], r["municipality_code"], r["part_of_id"])
        for r in rows("organization")
    }
    assert got == {
        "region": ("region", "region", None, None),
        "hosp-med": ("region", "department-medicine", None, "region"),
        "muni-0741": ("municipality", "municipality", "0741", None),
        "muni-0741-beds": ("municipality", "municipal-acutebeds", None, "muni-0741"),
        "gp-1": ("general-practice", "gp-clinic", None, None),
    }


def _warehouse(data: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    target = tmp_path / "w.duckdb"
    run_to_warehouse(load_folder(LIBRARY), data, target, derived=derived_queries(LIBRARY))
    return duckdb.connect(str(target), read_only=True)


def test_warehouse_joins(tmp_path: Path) -> None:
    con = _warehouse(DATA, tmp_path)
    facts = con.execute("SELECT id, age, education, lives_alone FROM patient_facts ORDER BY id").fetchall()
    # p1 died 2024-04-01 aged 87; the latest education counts; p2 is counted to the last contact (2024-02-03).
    assert facts == [("p1", 87, "upper-secondary", True), ("p2", 33, None, None), ("p3", None, None, None)]
    detail = con.execute(
        "SELECT id, sector, provider_kind, provider_municipality_code FROM encounter_detail ORDER BY id"
    ).fetchall()
    assert detail == [
        ("e1", "general-practice", "gp-clinic", None),
        ("e2", "region", "department-medicine", None),
        ("e3", "municipality", "municipal-acutebeds", "0741"),
        ("e4", None, None, None),
    ]
    codes = con.execute("SELECT rank, sks_code FROM encounter_diagnosis_code ORDER BY rank").fetchall()
    assert codes == [(1, "DJ189"), (2, "DJ441")]
    stamp = dict(con.execute("SELECT key, value FROM naer_warehouse").fetchall())
    assert stamp["format"] == "2" and "residence" in stamp["tables"]


@pytest.mark.parametrize("order", [1, -1], ids=["recorded-order", "reversed"])
def test_patient_facts_same_day_tie(tmp_path: Path, order: int) -> None:
    """Two contradictory living-alone facts of one day: the later recorded (higher id) holds whatever the
    order of the rows."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    o5 = next(
        json.loads(line)
        for line in (data / "Observation.ndjson").read_text().splitlines()
        if '"id":"o5"' in line
    )
    later = [
        {**o5, "id": "o6", "valueBoolean": False},
        {**o5, "id": "o7", "valueBoolean": True},
        {**o5, "id": "o8", "valueBoolean": False},
    ][::order]
    with (data / "Observation.ndjson").open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in later)
    con = _warehouse(data, tmp_path)
    assert con.execute("SELECT lives_alone FROM patient_facts WHERE id = 'p1'").fetchone() == (False,)


def test_library_on_the_samsoe_set(samsoe: Path, tmp_path: Path) -> None:
    con = _warehouse(samsoe, tmp_path)
    patients = con.execute(
        "SELECT count(*), count(municipality_code), count(gp_clinic_id) FROM patient"
    ).fetchone()
    assert patients is not None and patients[0] > 1000 and patients[0] == patients[1] == patients[2]
    sectors = dict(con.execute("SELECT sector, count(*) FROM encounter_detail GROUP BY 1").fetchall())
    assert None not in sectors and {"general-practice", "region", "municipality"} <= set(sectors)
    main = con.execute(
        "SELECT count(*), count(sks_code) FROM encounter_diagnosis_code WHERE rank = 1"
    ).fetchone()
    assert main is not None and main[0] > 0 and main[0] == main[1]


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="no Synthea fixture")
def test_library_on_synthea(tmp_path: Path) -> None:
    """Another generator's US-coded data: every view runs; Danish fields are null, the rest is kept."""
    con = _warehouse(SYNTHEA, tmp_path)
    counts = {
        t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
        for t in ("patient", "encounter", "condition")
    }  # type: ignore[index]
    assert counts == {"patient": 13, "encounter": 1215, "condition": 555}  # SOURCES.md
    sks = con.execute("SELECT count(sks_code), count(code), count(patient_id) FROM condition").fetchone()
    assert sks == (0, 555, 555)
    classes = dict(con.execute("SELECT class, count(*) FROM encounter GROUP BY 1").fetchall())
    assert classes == {"AMB": 1133, "IMP": 49, "EMER": 23, "HH": 9, "VR": 1}
    assert con.execute("SELECT count(*) FROM home_measurement").fetchone() == (0,)  # no Observation file


def _both_ways(view_path: Path, data: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    view = load_view(view_path)
    files, kind = files_for(data, view.resource)
    con = duckdb.connect()
    out = []
    for structs in (False, True):
        compiled = compile_view(view, structs=structs)
        out.append(
            sorted(con.execute(compiled.sql(source_sql(files, kind, compiled.fields))).fetchall(), key=repr)
        )
    return out[0], out[1]


@pytest.mark.parametrize("name", sorted(p.stem for p in LIBRARY.glob("*.json")))
def test_typed_reads_give_the_same_rows_as_json(name: str, samsoe: Path) -> None:
    """Reading top-level elements as typed STRUCTs is only an optimisation: every library view gives the
    same rows as when every element is read as JSON, on the Samsø set and on Synthea's."""
    for data in (samsoe, SYNTHEA) if SYNTHEA.is_dir() else (samsoe,):
        as_json, typed = _both_ways(LIBRARY / f"{name}.json", data)
        assert typed == as_json
        assert len(typed) > 0 or data == SYNTHEA  # Synthea has no Observation file and no encounter diagnoses
