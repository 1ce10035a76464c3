"""MedCom's profiles, value sets and code systems as the validator reads them.

The file beside this module (``medcom.json``) is derived from MedCom's published FHIR packages by
scripts/derive_medcom_definitions.py; nothing in it is written by hand. This module turns each
StructureDefinition's snapshot into a tree (children and slices per element) once, so that validation
walks the tree instead of searching the flat list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

SOURCE = Path(__file__).with_name("medcom.json")


@dataclass
class Element:
    """One element of a profile's snapshot, with the elements below it."""

    id: str
    path: str
    name: str  # the last step of the path: 'status', 'value[x]'
    min: int
    max: str  # '*' or a number
    raw: dict[str, Any]
    children: list[Child] = field(default_factory=list)

    @property
    def types(self) -> list[dict[str, Any]]:
        return list(self.raw.get("type", []))

    @property
    def fixed(self) -> Any:
        return self.raw.get("fixed")

    @property
    def pattern(self) -> Any:
        return self.raw.get("pattern")

    @property
    def binding(self) -> str | None:
        return self.raw.get("binding")

    @property
    def constraints(self) -> list[dict[str, str]]:
        return list(self.raw.get("constraint", []))

    @property
    def slicing(self) -> dict[str, Any] | None:
        return self.raw.get("slicing")

    def child(self, name: str) -> Child | None:
        for each in self.children:
            if each.name == name:
                return each
        return None

    @property
    def upper(self) -> int | None:
        return None if self.max == "*" else int(self.max)


@dataclass
class Child:
    """An element below another, with the slices the profile defines on it."""

    name: str
    base: Element
    slices: list[Element] = field(default_factory=list)

    @property
    def skippable(self) -> bool:
        """Nothing to check when the node lacks it: not a choice, and neither it nor a slice required.
        (Asked for every element of every resource: the walk's most frequent question.)"""
        found = self.__dict__.get("_skippable")
        if found is None:
            found = (
                not self.name.endswith("[x]") and self.base.min == 0 and all(s.min == 0 for s in self.slices)
            )
            self.__dict__["_skippable"] = found
        return bool(found)


@dataclass
class Profile:
    url: str
    name: str
    type: str
    kind: str
    version: str
    root: Element


@dataclass
class Definitions:
    profiles: dict[str, Profile]
    valuesets: dict[str, frozenset[tuple[str, str]]]
    open_valuesets: dict[str, str]
    codesystems: dict[str, frozenset[str]]
    by_name: dict[str, Profile]
    identifier_systems: dict[str, str]  # DK-core identifier profile -> the system it fixes
    names: dict[str, dict[str, tuple[str, str]]]  # code system -> code -> (English, Danish)

    def name(self, system: str, code: str, lang: str) -> str:
        """A code's display in ``lang`` (da or en), from MedCom's code system; the code when unknown."""
        found = self.names.get(system, {}).get(code)
        if found is None:
            return code
        return found[1] if lang == "da" and found[1] else found[0]

    def profile(self, url: str) -> Profile | None:
        """The profile at ``url``, or None when the packages do not hold it.

        A canonical with a version (``...|3.0.1``) is checked against the version the packages hold:
        CareCommunication 5.0.2 names MedCom core 3.0.1's profiles, and Nær holds core 4.0.0. Where the
        held version is stricter, version_skew.yaml names the rule (and it is a warning for that guide's
        messages); everywhere else the held version's rules apply. MedCom's invariants sometimes name a
        profile by an older canonical (``medcomfhir.dk/fhir/...`` for ``medcomfhir.dk/ig/...``), so its
        id is tried next."""
        url = url.partition("|")[0]
        found = self.profiles.get(url)
        if found is None and url.startswith("http://medcomfhir.dk/"):
            found = self.by_name.get(url.rsplit("/", 1)[-1])
        return found

    def valueset(self, url: str) -> frozenset[tuple[str, str]] | None:
        """A value set's (system, code) pairs; None when the packages cannot expand it."""
        found = self.valuesets.get(url)
        if found is None and "|" in url:
            found = self.valuesets.get(url.split("|", 1)[0])
        return found


def _tree(url: str, raw: dict[str, Any]) -> Profile:
    elements: dict[str, Element] = {}
    root: Element | None = None
    for item in raw["elements"]:
        step = item["id"].rsplit(".", 1)[-1]
        name = step.split(":", 1)[0]
        element = Element(
            id=item["id"],
            path=item["path"],
            name=name,
            min=int(item.get("min", 0)),
            max=str(item.get("max", "*")),
            raw=item,
        )
        elements[item["id"]] = element
        if "." not in item["id"]:
            root = element
            continue
        parent_id, _, last = item["id"].rpartition(".")
        parent = elements.get(parent_id)
        if parent is None:  # a re-slice or an element below one: not used by MedCom's profiles
            continue
        if ":" in last:
            child = parent.child(name)
            if child is not None:
                child.slices.append(element)
        else:
            parent.children.append(Child(name=name, base=element))
    if root is None:
        raise ValueError(f"profile {url} has no root element")
    return Profile(
        url=url, name=raw["name"], type=raw["type"], kind=raw["kind"], version=raw["version"], root=root
    )


@cache
def load() -> Definitions:
    data = orjson.loads(SOURCE.read_bytes())
    profiles = {url: _tree(url, raw) for url, raw in data["profiles"].items()}
    return Definitions(
        profiles=profiles,
        valuesets={
            url: frozenset((system, code) for system, code in pairs)
            for url, pairs in data["valuesets"].items()
        },
        open_valuesets=dict(data["open"]),
        codesystems={url: frozenset(codes) for url, codes in data["codesystems"].items()},
        by_name={profile.name: profile for profile in profiles.values()},
        identifier_systems=dict(data["identifier_systems"]),
        names={
            system: {code: (pair[0], pair[1]) for code, pair in codes.items()}
            for system, codes in data["names"].items()
        },
    )
