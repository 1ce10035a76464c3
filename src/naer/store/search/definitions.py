"""The search parameters the store indexes, read from ``parameters.json`` (definitions as data).

That file is derived from the FHIR R4 specification by ``scripts/derive_search_parameters.py`` (HL7's
SearchParameter Bundle and the patient CompartmentDefinition). Each parameter names its FHIR type
(token, string, reference, date, uri, number, quantity, composite) and the elements it selects as
dotted paths; the index and the search engine both read them from here, so what is indexed is
exactly what can be searched, and the CapabilityStatement claims exactly that. The parameters of the
specification that the store does not answer are listed with the reason (``unsupported``): search
refuses or reports them, never ignores them silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import orjson

DEFINITIONS = Path(__file__).with_name("parameters.json")
KINDS = ("token", "string", "reference", "date", "uri", "number", "quantity", "composite")
FILTERED = re.compile(r"^(?P<name>[A-Za-z0-9]+)\[(?P<key>[a-z]+)=(?P<value>[^\]]*)\]$")

# One step of a path: an element name, and optionally (key, value): keep only the items whose key has
# that value (``telecom[system=email]``).
Step = tuple[str, tuple[str, str] | None]
Path_ = tuple[Step, ...]


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: its type and its paths below the composite's base."""

    type: str
    paths: tuple[Path_, ...]


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str
    paths: tuple[Path_, ...]  # for a composite: its base elements (() the resource itself)
    targets: tuple[str, ...] = ()
    truthy: bool = False  # true when the element exists and is not false (Patient.deceased)
    components: tuple[Component, ...] = ()

    @cached_property
    def table(self) -> str:
        """The index table holding its values (a uri is kept as a token without system; a composite's
        rows are its second component's, under keys that name the first: see extract.composite_key)."""
        if self.type == "composite":
            return self.components[1].type
        return "token" if self.type == "uri" else self.type


def _step(text: str) -> Step:
    match = FILTERED.match(text)
    if match:
        return match["name"], (match["key"], match["value"])
    return text, None


def _path(text: str) -> Path_:
    return tuple(_step(s) for s in text.split(".")) if text else ()


def _param(raw: dict[str, Any]) -> SearchParam:
    if raw["type"] not in KINDS:
        raise ValueError(f"search parameter {raw['name']}: unknown type {raw['type']!r}")
    return SearchParam(
        raw["name"],
        raw["type"],
        tuple(_path(path) for path in raw["paths"]),
        tuple(raw.get("targets", ())),
        bool(raw.get("truthy", False)),
        tuple(Component(c["type"], tuple(_path(p) for p in c["paths"])) for c in raw.get("components", ())),
    )


@cache
def _definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(DEFINITIONS.read_bytes())
    return loaded


@cache
def params_of(resource_type: str) -> dict[str, SearchParam]:
    """The searchable parameters of a type by name (the common ``_tag``, ``_profile``, ``_security``,
    ``_source`` for every type, then the type's own)."""
    raw = _definitions()
    found = [_param(p) for p in raw["common"]] + [_param(p) for p in raw["types"].get(resource_type, [])]
    return {p.name: p for p in found}


def searchable_types() -> list[str]:
    return list(_definitions()["types"])


@cache
def unsupported(resource_type: str) -> dict[str, str]:
    """The specification's parameters of a type (and of every type) that this store does not answer,
    with the reason."""
    raw = _definitions()["unsupported"]
    return {**raw.get("*", {}), **raw.get(resource_type, {})}


@cache
def compartment() -> dict[str, tuple[str, ...]]:
    """Per resource type, the reference parameters that put a resource in a patient's compartment."""
    return {kind: tuple(names) for kind, names in _definitions()["compartment"].items()}


@cache
def citizen_parameters() -> frozenset[str]:
    """Names of parameters that narrow a search to citizens: every compartment parameter of any type,
    and the reference parameters named for a patient. An unknown one is always refused, never ignored:
    ignoring it would answer with every citizen's resources."""
    names = {name for names in compartment().values() for name in names}
    return frozenset(names | {"patient", "subject", "beneficiary", "individual", "_has"})
