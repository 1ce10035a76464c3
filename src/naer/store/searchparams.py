"""The search parameters the store indexes, read from ``search_parameters.json`` (definitions as data).

Each parameter names its FHIR R4 type (token, string, reference, date, uri) and the elements it selects as
dotted paths; the index and the search engine both read them from here, so what is indexed is exactly
what can be searched, and the CapabilityStatement claims exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

DEFINITIONS = Path(__file__).with_name("search_parameters.json")
KINDS = ("token", "string", "reference", "date", "uri")


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str
    paths: tuple[tuple[str, ...], ...]
    targets: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        """The index table holding its values (a uri is kept as a token without system)."""
        return "token" if self.type == "uri" else self.type


def _param(raw: dict[str, Any]) -> SearchParam:
    if raw["type"] not in KINDS:
        raise ValueError(f"search parameter {raw['name']}: unknown type {raw['type']!r}")
    return SearchParam(
        raw["name"],
        raw["type"],
        tuple(tuple(path.split(".")) for path in raw["paths"]),
        tuple(raw.get("targets", ())),
    )


@cache
def _definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(DEFINITIONS.read_bytes())
    return loaded


@cache
def params_of(resource_type: str) -> dict[str, SearchParam]:
    """The searchable parameters of a type by name (the common ``_tag``, ``_profile``, ``_security``
    for every type, then the type's own)."""
    raw = _definitions()
    found = [_param(p) for p in raw["common"]] + [_param(p) for p in raw["types"].get(resource_type, [])]
    return {p.name: p for p in found}


def searchable_types() -> list[str]:
    return list(_definitions()["types"])


@cache
def compartment() -> dict[str, tuple[str, ...]]:
    """Per resource type, the reference parameters that put a resource in a patient's compartment."""
    return {kind: tuple(names) for kind, names in _definitions()["compartment"].items()}
