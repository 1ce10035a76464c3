"""FHIRPath details the conformance suite does not reach: reference forms, strings, parsing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from naer.views.compile import compile_view
from naer.views.definition import parse_view
from naer.views.fhirpath import FhirPathSyntaxError, parse
from naer.views.run import query_rows


@pytest.mark.parametrize(
    ("reference", "key", "patient_key"),
    [
        ("Patient/p1", "p1", "p1"),
        ("https://fhir.example.org/r4/Patient/p1", "p1", "p1"),
        ("Patient/p1/_history/3", "p1", "p1"),
        ("Organization/o1", "o1", None),
        ("Patient?identifier=urn:oid:1.2.208.176.1.2|0101010101", None, None),  # conditional: no key
        ("#contained-1", None, None),
        ("p1", None, None),
        ("Patient/", None, None),  # the fast path for "Type/id" must not make an empty key
        ("Patient/a/b", None, None),  # nor read past a second "/"
        ("Patient/p1?x=1", None, None),
    ],
)
def test_reference_keys(tmp_path: Path, reference: str, key: str | None, patient_key: str | None) -> None:
    data = tmp_path / "Encounter.ndjson"
    data.write_text(json.dumps({"resourceType": "Encounter", "id": "e", "subject": {"reference": reference}}))
    view = parse_view(
        {
            "name": "v",
            "resource": "Encounter",
            "select": [
                {
                    "column": [
                        {"name": "any", "path": "subject.getReferenceKey()"},
                        {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                    ]
                }
            ],
        }
    )
    assert query_rows(view, tmp_path)[1] == [{"any": key, "patient": patient_key}]


def test_string_functions_and_iif(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text(
        json.dumps(
            {"resourceType": "Patient", "id": "p", "name": [{"family": "Møller", "given": ["Bente", "K"]}]}
        )
    )
    columns = {
        "starts": "name.family.first().startsWith('Mø')",
        "upper": "name.family.first().upper()",
        "count": "name.given.count()",
        "joined": "name.given.join(' ') & '!'",
        "pick": "iif(name.given.count() > 1, 'many', 'one')",
        "is_in": "'K' in name.given",
    }
    view = parse_view(
        {
            "name": "v",
            "resource": "Patient",
            "select": [{"column": [{"name": k, "path": v} for k, v in columns.items()]}],
        }
    )
    assert query_rows(view, tmp_path)[1] == [
        {"starts": True, "upper": "MØLLER", "count": 2, "joined": "Bente K!", "pick": "many", "is_in": True}
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty FHIRPath expression"),
        ("name.", "expected a name at the end"),
        ("name.where(use = 'official'", "expected ')' at the end"),
        ("a # b", "unexpected character '#' at position 3"),
        ("$index", "$index is not supported"),
    ],
)
def test_syntax_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(FhirPathSyntaxError) as caught:
        parse(text)
    assert message in str(caught.value)


def _fields(view: dict[str, object]) -> dict[str, str]:
    return compile_view(parse_view({"name": "v", "resource": "Patient", **view}), structs=True).fields


def test_typed_reads_where_the_view_allows_json_where_it_does_not() -> None:
    """Top-level elements are read as typed STRUCTs with just the sub-elements used; an element also used
    in a way only JSON supports (a whole complex value as a column, a choice without ofType) is read as
    JSON, and so are its other uses."""
    fields = _fields(
        {
            "select": [
                {
                    "column": [
                        {"name": "family", "path": "name.family.first()"},
                        {"name": "gp", "path": "generalPractitioner.getReferenceKey(Organization)"},
                        {"name": "deceased", "path": "deceased.ofType(boolean)"},
                    ]
                }
            ]
        }
    )
    assert fields["name"] == 'STRUCT("family" VARCHAR)[]'
    assert fields["generalPractitioner"] == 'STRUCT("reference" VARCHAR)[]'
    assert fields["deceasedBoolean"] == "BOOLEAN" and "deceasedDateTime" not in fields
    whole = _fields(
        {
            "select": [
                {
                    "column": [
                        {"name": "family", "path": "name.family.first()"},
                        {"name": "names", "path": "name", "collection": True},
                        {"name": "deceased", "path": "deceased.exists()"},
                    ]
                }
            ]
        }
    )
    assert whole["name"] == "JSON"
    assert whole["deceasedBoolean"] == whole["deceasedDateTime"] == "JSON"


def test_first_of_a_null_filtered_list_takes_the_first_non_null_item() -> None:
    """``list_filter(M, x -> x IS NOT NULL)[1]`` is compiled as ``list_any_value(M)``; anything that is not
    exactly that one call keeps the filter."""
    from naer.views.expressions import _without_null_filter

    assert _without_null_filter("list_filter(list_transform(r.a, x1 -> x1.b), x2 -> x2 IS NOT NULL)") == (
        "list_transform(r.a, x1 -> x1.b)"
    )
    assert _without_null_filter("list_filter(f('a)b'), x3 -> x3 IS NOT NULL)") == "f('a)b')"
    assert (
        _without_null_filter("list_filter(a, x1 -> x1 IS NOT NULL) || list_filter(b, x2 -> x2 IS NOT NULL)")
        is None
    )
    assert _without_null_filter("list_filter(a, x1 -> x1 IS NOT NULL)[1]") is None
    assert _without_null_filter("list_filter(a, x1 -> x2 IS NOT NULL)") is None
