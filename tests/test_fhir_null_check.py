"""The faster route to fhir_core's null check (naer.fhir.null_check) answers exactly as the library's own:
the same resources pass, and the same errors, at the same places, come back for the rest."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from naer.fhir import null_check
from naer.fhir.validate import validation_errors

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SYNTHEA = FIXTURES / "synthea" / "10-patients"
OWN = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": "0101901234"}],
        "name": [{"family": "Jensen", "given": ["Anne", "Marie"], "_given": [None, {"extension": []}]}],
        "telecom": [{"system": "phone", "value": "12345678"}],
        "address": [{"line": ["Havnevej 1"], "postalCode": "8305"}],
    },
    {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "type": [{"coding": [{"system": "urn:oid:1.2.208.176.2.4", "code": "ALAA01"}]}],
        "subject": {"reference": "Patient/p1"},
        "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}],
        "location": [{"location": {"reference": "Location/l1"}}],
    },
]


def _samples() -> list[dict[str, Any]]:
    found = list(OWN)
    if SYNTHEA.is_dir():
        for path in sorted(SYNTHEA.glob("*.ndjson.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                found += [json.loads(line) for line, _ in zip(lines, range(3), strict=False)]
    return found


SAMPLES = _samples()


def _lists(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every JSON list in a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _lists(value, (*path, key))
    elif isinstance(node, list):
        yield path
        for i, value in enumerate(node):
            yield from _lists(value, (*path, i))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def damaged(draw: st.DrawFn) -> dict[str, Any]:
    """A sample resource with a null put into (or in place of an item of) some of its lists."""
    resource = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_lists(resource))  # again after each change: an item made null has no lists below it
        if not paths:
            break
        target = _at(resource, draw(st.sampled_from(paths)))
        index = draw(st.integers(0, len(target)))
        if draw(st.booleans()) or index == len(target):
            target.insert(index, None)
        else:
            target[index] = None
    return resource


def _library(resource: dict[str, Any]) -> list[str]:
    null_check.uninstall()
    try:
        return validation_errors(resource)
    finally:
        assert null_check.install()


def test_installed_for_the_pinned_library() -> None:
    # constraints.txt pins fhir_core 1.1.12, whose code the faster route was written against
    assert null_check.installed()


def test_a_null_in_a_list_of_complex_elements_is_the_library_error() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Jensen"}, None]}
    assert validation_errors(patient) == _library(patient)
    assert validation_errors(patient) == ["Patient.name: None is not allowed as an element of name"]
    # a primitive list's null lines a value up with its extension: allowed, as by the library
    fine = {"resourceType": "Patient", "name": [{"given": ["A", None], "_given": [None, {"id": "x"}]}]}
    assert validation_errors(fine) == _library(fine) == []


@pytest.mark.parametrize("resource", SAMPLES, ids=lambda r: f"{r['resourceType']}/{r.get('id', '')}"[:40])
def test_undamaged_resources_agree(resource: dict[str, Any]) -> None:
    assert validation_errors(resource) == _library(resource)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_resources_agree(resource: dict[str, Any]) -> None:
    assert validation_errors(resource) == _library(resource)
