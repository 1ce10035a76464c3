"""The official SQL on FHIR v2 conformance suite, read from ../shared/fixtures at test time.

Every case runs, experimental ones included; rows are compared without regard to order, as the suite says,
and numbers by value (5 equals 5.0). ``expectError`` cases must fail with a clear UserError, never a crash.

Each case runs twice: from one mixed NDJSON file (every element read as JSON) and from one file per resource
type (top-level elements read as typed STRUCTs where the view allows), so both compilations are held to the
suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from naer.errors import UserError
from naer.views.definition import parse_view
from naer.views.run import query_rows

# ../shared/fixtures beside the repository, or wherever NAER_FIXTURES points (make check sets it).
FIXTURES = Path(
    os.environ.get("NAER_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
SUITE = FIXTURES / "sql-on-fhir" / "tests"


def _cases() -> list[Any]:
    if not SUITE.is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"no conformance suite at {SUITE}"))]
    out = []
    for path in sorted(SUITE.glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for i, case in enumerate(suite["tests"]):
            out.append(pytest.param(path, i, id=f"{path.stem}: {case['title']}"))
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _key(row: dict[str, Any]) -> str:
    return json.dumps(_norm(row), sort_keys=True)


def _write(resources: list[dict[str, Any]], folder: Path, layout: str) -> Path:
    if layout == "mixed":
        data = folder / "resources.ndjson"
        data.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
        return data
    for r in resources:
        with (folder / f"{r['resourceType']}.ndjson").open("a", encoding="utf-8") as out:
            out.write(json.dumps(r) + "\n")
    return folder


@pytest.mark.parametrize("layout", ["mixed", "typed"])
@pytest.mark.parametrize(("path", "index"), _cases())
def test_conformance(path: Path, index: int, layout: str, tmp_path: Path) -> None:
    suite = json.loads(path.read_text(encoding="utf-8"))
    case = suite["tests"][index]
    data = _write(suite["resources"], tmp_path, layout)
    if case.get("expectError"):
        with pytest.raises(UserError) as caught:
            query_rows(parse_view(case["view"]), data)
        assert str(caught.value).startswith("view ")
        return
    names, rows = query_rows(parse_view(case["view"]), data)
    if "expectColumns" in case:
        assert names == case["expectColumns"]
    if "expect" in case:
        assert sorted(map(_key, rows)) == sorted(map(_key, case["expect"]))


def test_the_whole_suite_is_there() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"no conformance suite at {SUITE}")
    count = sum(len(json.loads(p.read_text())["tests"]) for p in SUITE.glob("*.json"))
    assert count == 134  # the suite at the commit named in ../shared/fixtures/sql-on-fhir/SOURCES.md
