"""Derive the MedCom definitions the message validator runs on (src/naer/messaging/medcom.json) from
MedCom's own FHIR packages (../shared/fixtures/medcom/packages/*.tgz).

Kept from each StructureDefinition: its snapshot's elements, with only what validation reads (id,
path, cardinality, types with their profiles and target profiles, fixed and pattern values, required
bindings, slicing and the FHIRPath invariants). Kept from the value sets: each one expanded to its
(system, code) pairs from the packaged code systems; a value set that includes a code system the
packages do not hold, or includes by filter, is listed under ``open`` with the reason, and the
validator says it could not check a code bound to it rather than refuse it.

Run: .venv/bin/python scripts/derive_medcom_definitions.py [--check]
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("NAER_FIXTURES", ROOT.parent / "shared" / "fixtures"))
PACKAGES = FIXTURES / "medcom" / "packages"
OUT = ROOT / "src" / "naer" / "messaging" / "medcom.json"
# The systems DK-core's identifier profiles fix, which MedCom's slices are typed by (not in the packages).
DK_CORE = ROOT / "scripts" / "data" / "dk-core-identifier-systems.json"

ELEMENT_KEYS = ("id", "path", "sliceName", "min", "max")


def _package_files(path: Path) -> list[dict[str, Any]]:
    """The conformance resources of one package (not its examples)."""
    found = []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            name = member.name
            if not name.endswith(".json") or "/example/" in name or "/other/" in name:
                continue
            if name.rsplit("/", 1)[-1].startswith(("package.json", ".index", "ImplementationGuide")):
                continue
            handle = archive.extractfile(member)
            if handle is not None:
                found.append(json.load(handle))
    return found


def _element(raw: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {key: raw[key] for key in ELEMENT_KEYS if key in raw}
    types = []
    for kind in raw.get("type", []):
        entry: dict[str, Any] = {"code": kind["code"]}
        if kind.get("profile"):
            entry["profile"] = kind["profile"]
        if kind.get("targetProfile"):
            entry["targetProfile"] = kind["targetProfile"]
        types.append(entry)
    if types:
        kept["type"] = types
    for key, value in raw.items():
        if key.startswith("fixed"):
            kept["fixed"] = value
        elif key.startswith("pattern"):
            kept["pattern"] = value
    binding = raw.get("binding")
    if binding and binding.get("strength") == "required" and binding.get("valueSet"):
        kept["binding"] = binding["valueSet"]
    if "slicing" in raw:
        kept["slicing"] = {
            "discriminator": raw["slicing"].get("discriminator", []),
            "rules": raw["slicing"].get("rules", "open"),
        }
    constraints = [
        {
            "key": each["key"],
            "severity": each.get("severity", "error"),
            "expression": each["expression"],
            "human": each.get("human", ""),
        }
        for each in raw.get("constraint", [])
        if each.get("expression")
    ]
    if constraints:
        kept["constraint"] = constraints
    return kept


def _names(concepts: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each code's English display and Danish designation (the pages show them)."""
    found: dict[str, list[str]] = {}
    for concept in concepts:
        danish = next((d["value"] for d in concept.get("designation", []) if d.get("language") == "da"), "")
        english = concept.get("display", concept["code"])
        found[concept["code"]] = [english, danish or english]
        found.update(_names(concept.get("concept", [])))
    return found


def _codes(concepts: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for concept in concepts:
        found.append(concept["code"])
        found.extend(_codes(concept.get("concept", [])))
    return found


def _expand(valueset: dict[str, Any], systems: dict[str, list[str]]) -> tuple[list[list[str]] | None, str]:
    """(system, code) pairs of a value set, or None and why it cannot be expanded here."""
    pairs: list[list[str]] = []
    compose = valueset.get("compose", {})
    for include in compose.get("include", []):
        system = include.get("system")
        if include.get("valueSet") or include.get("filter"):
            return None, "includes by filter or by another value set"
        if include.get("concept"):
            pairs.extend([system, concept["code"]] for concept in include["concept"])
        elif system in systems:
            pairs.extend([system, code] for code in systems[system])
        else:
            return None, f"includes all of {system}, which the packages do not hold"
    excluded = {
        (exclude.get("system"), concept["code"])
        for exclude in compose.get("exclude", [])
        for concept in exclude.get("concept", [])
    }
    return [pair for pair in pairs if tuple(pair) not in excluded], ""


def derive() -> dict[str, Any]:
    profiles: dict[str, Any] = {}
    valuesets: list[dict[str, Any]] = []
    systems: dict[str, list[str]] = {}
    names: dict[str, dict[str, list[str]]] = {}
    packages = []
    for path in sorted(PACKAGES.glob("*.tgz")):
        packages.append(path.name)
        for resource in _package_files(path):
            kind = resource.get("resourceType")
            if kind == "StructureDefinition" and "snapshot" in resource:
                profiles[resource["url"]] = {
                    "name": resource["id"],
                    "type": resource["type"],
                    "kind": resource["kind"],
                    "version": resource.get("version", ""),
                    "elements": [_element(raw) for raw in resource["snapshot"]["element"]],
                }
            elif kind == "CodeSystem" and resource.get("content") == "complete":
                systems[resource["url"]] = _codes(resource.get("concept", []))
                names[resource["url"]] = _names(resource.get("concept", []))
            elif kind == "ValueSet":
                valuesets.append(resource)
    expanded: dict[str, Any] = {}
    open_sets: dict[str, str] = {}
    for valueset in valuesets:
        pairs, why = _expand(valueset, systems)
        if pairs is None:
            open_sets[valueset["url"]] = why
        else:
            expanded[valueset["url"]] = pairs
    return {
        "about": (
            "Derived by scripts/derive_medcom_definitions.py from MedCom's FHIR packages "
            f"({', '.join(packages)}) and DK-core's identifier systems "
            "(scripts/data/dk-core-identifier-systems.json); do not edit by hand: run the script."
        ),
        "packages": packages,
        "profiles": dict(sorted(profiles.items())),
        "valuesets": dict(sorted(expanded.items())),
        "open": dict(sorted(open_sets.items())),
        "codesystems": dict(sorted(systems.items())),
        "names": dict(sorted(names.items())),
        "identifier_systems": json.loads(DK_CORE.read_text(encoding="utf-8"))["systems"],
    }


def main() -> int:
    text = json.dumps(derive(), ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n"
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is not what the packages give: run the script")
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
