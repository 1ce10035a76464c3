"""Bad views and bad data: a clear message naming the view, column, file or line; nothing half-written."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from naer.errors import UserError
from naer.views.definition import parse_view
from naer.views.run import derived_queries, load_folder, query_rows, run_to_file, run_to_warehouse

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "naer" / "views" / "library"
DATA = Path(__file__).parent / "data" / "views"


def _view(column: dict[str, object], resource: str = "Patient") -> dict[str, object]:
    return {
        "resourceType": "ViewDefinition",
        "name": "v",
        "resource": resource,
        "select": [{"column": [column]}],
    }


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            {"name": "x", "path": "name.frobnicate()"},
            "view v, column 'x': unknown FHIRPath function 'frobnicate()'",
        ),
        ({"path": "id"}, "view v, select 1 column 1: the column has no name"),
        ({"name": "x", "path": "name.nickname"}, "view v, column 'x': HumanName has no element 'nickname'"),
        ({"name": "x", "path": "shoeSize"}, "view v, column 'x': Patient has no element 'shoeSize'"),
        ({"name": "x", "path": "name.family ="}, "view v, column 'x': expected an expression at the end"),
        ({"name": "bad name", "path": "id"}, "must match"),
        ({"name": "x", "path": "deceased.ofType(Quantity)"}, "'deceased' cannot be Quantity"),
        ({"name": "x", "path": "%nope"}, "the constant %nope is not defined"),
    ],
)
def test_a_bad_view_is_named_with_its_column(column: dict[str, object], message: str) -> None:
    with pytest.raises(UserError) as caught:
        query_rows(parse_view(_view(column)), DATA)
    assert message in str(caught.value)


def test_a_line_that_is_not_json_is_named_by_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "Patient.ndjson"
    data.write_text('{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":\n{}\n')
    with pytest.raises(UserError) as caught:
        query_rows(parse_view(_view({"name": "id", "path": "id"})), tmp_path)
    assert str(caught.value) == f"view v: {data}, line 2 is not JSON (unexpected end of data)" or (
        f"{data}, line 2 is not JSON" in str(caught.value)
    )


def test_a_failed_run_keeps_the_old_output_file(tmp_path: Path) -> None:
    out = tmp_path / "patients.csv"
    out.write_text("old\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "Patient.ndjson").write_text("not json\n")
    view = parse_view(_view({"name": "id", "path": "id"}))
    with pytest.raises(UserError):
        run_to_file(view, bad, out)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "patients.csv"]
    result = run_to_file(view, DATA, out)
    assert result.rows == 3 and out.read_text().splitlines() == ["id", "p1", "p2", "p3"]


def test_a_failed_warehouse_run_leaves_the_tables_as_they_were(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    run_to_warehouse(load_folder(LIBRARY), DATA, warehouse, derived=derived_queries(LIBRARY))
    broken = tmp_path / "broken"
    shutil.copytree(DATA, broken)
    with (broken / "Observation.ndjson").open(
        "a"
    ) as fh:  # patient and encounter are fine, observation is not
        fh.write('{"resourceType": "Observation", "id": "x"\n')
    (broken / "Patient.ndjson").write_text((DATA / "Patient.ndjson").read_text().splitlines()[0] + "\n")
    with pytest.raises(UserError) as caught:
        run_to_warehouse(load_folder(LIBRARY), broken, warehouse, derived=derived_queries(LIBRARY))
    assert "Observation.ndjson, line 7 is not JSON" in str(caught.value)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM patient").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM home_measurement").fetchone() == (3,)


def test_gzip_and_parquet_input_give_the_same_rows(tmp_path: Path) -> None:
    view = parse_view(json.loads((LIBRARY / "encounter.json").read_text()))
    expected = sorted(map(str, query_rows(view, DATA)[1]))
    gz = tmp_path / "gz"
    gz.mkdir()
    with gzip.open(gz / "Encounter.000.ndjson.gz", "wb") as fh:
        fh.write((DATA / "Encounter.ndjson").read_bytes())
    assert sorted(map(str, query_rows(view, gz)[1])) == expected
    pq = tmp_path / "pq"
    pq.mkdir()
    duckdb.execute(
        f"COPY (SELECT json AS resource FROM read_ndjson_objects('{DATA / 'Encounter.ndjson'}')) "
        f"TO '{pq / 'Encounter.parquet'}' (FORMAT PARQUET)"
    )
    assert sorted(map(str, query_rows(view, pq)[1])) == expected


def test_a_single_mixed_file_is_filtered_by_resource_type(tmp_path: Path) -> None:
    mixed = tmp_path / "all.ndjson"
    mixed.write_text((DATA / "Patient.ndjson").read_text() + (DATA / "Encounter.ndjson").read_text())
    view = parse_view(_view({"name": "id", "path": "id"}))
    assert sorted(r["id"] for r in query_rows(view, mixed)[1]) == ["p1", "p2", "p3"]  # type: ignore[type-var]


def test_the_command_line(tmp_path: Path, naer: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    view = tmp_path / "v.json"
    view.write_text(json.dumps(_view({"name": "id", "path": "id"})))
    ok = naer("views", "run", str(view), "--input", str(DATA), "--out", "p.ndjson", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "p.ndjson").read_text().splitlines() == ['{"id":"p1"}', '{"id":"p2"}', '{"id":"p3"}']
    sql = naer("views", "sql", str(view), cwd=tmp_path)
    assert sql.returncode == 0 and "read_ndjson" in sql.stdout and "resourceType" in sql.stdout
    folder = naer("views", "run", str(LIBRARY), "--input", str(DATA), "--warehouse", "w.duckdb", cwd=tmp_path)
    assert folder.returncode == 0, folder.stderr
    assert "patient_facts" in folder.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["views", "run", "v.json", "--input", "nowhere", "--out", "o.csv"], "no input nowhere"),
        (["views", "run", "missing.json", "--input", ".", "--out", "o.csv"], "no view file missing.json"),
        (
            ["views", "run", "v.json", "--input", ".", "--out", "o.xlsx"],
            "must end in .ndjson, .csv or .parquet",
        ),
        (
            ["views", "run", "bad.json", "--input", ".", "--out", "o.csv"],
            "view bad, column 'x': unknown FHIRPath",
        ),
        (["views", "run", "v.json", "--input", "."], "give --out FILE"),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_code_2(
    tmp_path: Path, args: list[str], message: str, naer: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "v.json").write_text(json.dumps(_view({"name": "id", "path": "id"})))
    (tmp_path / "bad.json").write_text(json.dumps(_view({"name": "x", "path": "nope()"}) | {"name": "bad"}))
    result = naer(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
