"""Derive the store's search definitions (src/naer/store/search/parameters.json) from the FHIR R4
specification itself: HL7's Bundle of every R4 SearchParameter (../shared/fixtures/fhir-r4) and R4's
patient CompartmentDefinition (scripts/data/compartment-patient-r4.json).

Each parameter's FHIRPath expression is turned into the dotted element paths the index reads: unions
split per resource type, choice elements (``Observation.effective``, ``(X as Quantity)``, ``.as(Age)``)
expanded into their typed names from the FHIR models, ``where(resolve() is Patient)`` kept as the
reference's target types and ``where(system='email')`` as a filter on the step. A composite parameter
keeps the paths of its base elements and of each component below them. A parameter whose type or
expression the store cannot index (special, a composite of three components or whose first is not a
token, or an expression outside these forms) is listed under ``unsupported`` with the reason, so that
search refuses it (strict) or reports it (lenient) and the CapabilityStatement leaves it out.

Run: .venv/bin/python scripts/derive_search_parameters.py [--check]
"""

from __future__ import annotations

import json
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("NAER_FIXTURES", ROOT.parent / "shared" / "fixtures"))
BUNDLE = FIXTURES / "fhir-r4" / "search-parameters.json"
COMPARTMENT = ROOT / "scripts" / "data" / "compartment-patient-r4.json"
TYPES = ROOT / "scripts" / "data" / "resource-types-r4.json"
OWN = ROOT / "scripts" / "data" / "naer-search-parameters.json"  # Nær's own, for the access policy
OUT = ROOT / "src" / "naer" / "store" / "search" / "parameters.json"
TYPES_OUT = ROOT / "src" / "naer" / "fhir" / "r4_types.json"  # the types the store keeps and validates

INDEXED = ("token", "string", "reference", "date", "uri", "number", "quantity")
# A composite is answered when it has two components and the first is a token: the index keeps the
# second component's value under a key made of the composite's name and the first component's code.
COMPONENT_TYPES = ("token", "string", "date", "quantity", "number")
SPECIAL_NAMES = {"_id", "_lastUpdated"}  # answered from the resource table, not from the index
STEP = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)(\.where\((?P<key>[a-z]+)='(?P<value>[^']*)'\))?$")


ABOUT = " ".join(
    [
        "Derived by scripts/derive_search_parameters.py from FHIR R4 (4.0.1): the SearchParameter",
        "Bundle (../shared/fixtures/fhir-r4/search-parameters.json) and the patient",
        "CompartmentDefinition (scripts/data/compartment-patient-r4.json), with Nær's own parameters",
        "(scripts/data/naer-search-parameters.json). Do not edit by hand: run the",
        "script. 'paths' are the elements a parameter's FHIRPath expression selects, as dotted paths",
        "from the resource (choice elements once per type; 'name[key=value]' keeps only the items",
        "whose key has that value); 'targets' are the types a where(resolve() is Type) keeps; 'truthy'",
        "indexes true when the element exists and is not false. A composite's 'paths' are its base",
        "elements ('' the resource itself); each of its 'components' has a type and paths below the base.",
        "'unsupported' lists the parameters of",
        "the specification this store does not answer and why. 'compartment' gives, per type, the",
        "parameters that put a resource in a citizen's compartment ('additions' in the compartment",
        "file are Nær's own).",
    ]
)


class Unsupported(Exception):
    """An expression this store does not index (the message says why)."""


def _model(name: str) -> Any:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError):
        return None


def _element_type(field: Any) -> str | None:
    annotation = field.annotation
    while typing.get_args(annotation):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    name = getattr(annotation, "__name__", "")
    return name[:-4] if name.endswith("Type") else None


def _fields(model: Any) -> dict[str, Any]:
    return {(f.alias or n): f for n, f in model.model_fields.items() if not (f.alias or n).startswith("_")}


def _expand(model: Any, steps: list[tuple[str, str | None]], choice_type: str | None) -> list[str]:
    """Every concrete dotted path the steps reach in ``model`` (choices expanded by the models)."""
    if not steps:
        return [""]
    (name, flt), rest = steps[0], steps[1:]
    fields = _fields(model) if model is not None else {}
    last = not rest
    if model is not None and name not in fields:
        options = [
            alias
            for alias, f in fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("one_of_many") == name
        ]
        if last and choice_type:
            wanted = name + choice_type[:1].upper() + choice_type[1:]
            options = [o for o in options if o == wanted]
        if not options:
            raise Unsupported(f"no element {name!r} in {model.__name__} (an R4B model)")
    else:
        options = [name]
    found = []
    for option in options:
        step = option + (f"[{flt}]" if flt else "")
        field = fields.get(option)
        inner = _model(_element_type(field)) if field is not None and _element_type(field) else None
        for tail in _expand(inner, rest, choice_type):
            found.append(step + ("." + tail if tail else ""))
    return found


def _part(kind: str, part: str) -> tuple[list[str], list[str]]:
    """(paths, target types) of one union member of an expression, for resource type ``kind``."""
    text = part.strip()
    choice: str | None = None
    targets: list[str] = []
    below = re.fullmatch(r"\((.+) as (\w+)\)((?:\.[A-Za-z]+)+)", text)
    if below:  # (Observation.value as CodeableConcept).text: the choice's type, then elements below it
        found, targets = _part(kind, f"({below.group(1)} as {below.group(2)})")
        return [p + below.group(3) for p in found], targets
    cast = re.fullmatch(r"\((.+) as (\w+)\)", text) or re.fullmatch(r"(.+)\.as\((\w+)\)", text)
    if cast:
        text, choice = cast.group(1), cast.group(2)
    resolve = re.fullmatch(r"(.+)\.where\(resolve\(\) is (\w+)\)", text)
    if resolve:
        text, targets = resolve.group(1), [resolve.group(2)]
    if not text.startswith(kind + "."):
        raise Unsupported(f"expression {part!r} is not a path from {kind}")
    raw = re.split(r"\.(?![^(]*\))", text[len(kind) + 1 :])
    steps: list[tuple[str, str | None]] = []
    for item in raw:
        if item.startswith("where(") and steps:
            inner = re.fullmatch(r"where\(([a-z]+)='([^']*)'\)", item)
            if not inner:
                raise Unsupported(f"expression {part!r}: filter {item!r} is not field='value'")
            steps[-1] = (steps[-1][0], f"{inner.group(1)}={inner.group(2)}")
            continue
        if not STEP.match(item):
            raise Unsupported(f"expression {part!r}: step {item!r} is not an element name")
        steps.append((item, None))
    return _expand(_model(kind), steps, choice), targets


def _composite(kind: str, param: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A composite's base paths and, per component, its type and paths below the base."""
    parts = param.get("component") or []
    types = [by_url.get(c["definition"], {}).get("type") for c in parts]
    if len(parts) != 2:
        raise Unsupported(f"composite of {len(parts)} components (this store answers two)")
    if types[0] != "token" or types[1] not in COMPONENT_TYPES:
        raise Unsupported(f"composite of {types[0]} and {types[1]} (this store answers a token and a value)")
    bases: list[str] = []
    components: list[dict[str, Any]] = [{"type": t, "paths": []} for t in types]
    for member in param["expression"].split(" | "):
        member = member.strip()
        if member == kind:
            base = ""
        elif member.startswith(kind + "."):
            found, _ = _part(kind, member)
            if len(found) != 1:
                raise Unsupported(f"composite base {member!r} is not one element")
            base = found[0]
        else:
            continue
        bases.append(base)
        for part, component in zip(parts, components, strict=True):
            for sub in part["expression"].split(" | "):
                if sub.strip().startswith("%"):
                    raise Unsupported(f"component {sub.strip()!r} is not below the base")
                whole = f"{member}.{sub.strip()}"
                found, _ = _part(kind, whole)
                relative = [p[len(base) + 1 :] if base else p for p in found]
                component["paths"] += [r for r in relative if r not in component["paths"]]
    if not bases:
        raise Unsupported(f"composite expression {param['expression']!r} has no base in {kind}")
    return {"name": param["code"], "type": "composite", "paths": bases, "components": components}


def _definition(kind: str, param: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> dict[str, Any]:
    name, ptype = param["code"], param["type"]
    if ptype == "composite":
        return _composite(kind, param, by_url)
    if ptype not in INDEXED:
        raise Unsupported(f"{ptype} parameters are not indexed by this store")
    expression = param.get("expression")
    if not expression:
        raise Unsupported("the specification gives it no expression")
    if expression == "Patient.deceased.exists() and Patient.deceased != false":
        return {"name": name, "type": ptype, "paths": ["deceasedBoolean", "deceasedDateTime"], "truthy": True}
    paths: list[str] = []
    targets: list[str] = []
    members = [p for p in expression.split(" | ") if p.strip().lstrip("(").startswith(kind + ".")]
    if not members:
        raise Unsupported(f"expression {expression!r} has no path from {kind}")
    narrowed = True
    for member in members:
        found, aims = _part(kind, member)
        paths += [p for p in found if p not in paths]
        if aims:
            targets += [t for t in aims if t not in targets]
        else:
            narrowed = False
    out: dict[str, Any] = {"name": name, "type": ptype, "paths": paths}
    if ptype == "reference" and narrowed and targets:
        out["targets"] = targets
    return out


def derive() -> dict[str, Any]:
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    params = [e["resource"] for e in bundle["entry"] if e["resource"].get("version") == "4.0.1"]
    params += [e["resource"] for e in json.loads(OWN.read_text(encoding="utf-8"))["entry"]]
    by_url = {p["url"]: p for p in params}
    common: list[dict[str, Any]] = []
    types: dict[str, list[dict[str, Any]]] = {}
    unsupported: dict[str, dict[str, str]] = {}
    for param in sorted(params, key=lambda p: p["id"]):
        for base in param["base"]:
            kind = base
            if base in ("Resource", "DomainResource"):
                if param["code"] in SPECIAL_NAMES:
                    continue
                expression = (param.get("expression") or "").replace(f"{base}.", "Meta.", 1)
                try:
                    if not expression.startswith("Meta.meta."):
                        raise Unsupported(f"{param['type']} parameter {param['code']} is not answered")
                    path = expression[len("Meta.") :]
                    common.append({"name": param["code"], "type": param["type"], "paths": [path]})
                except Unsupported as reason:
                    unsupported.setdefault("*", {})[param["code"]] = str(reason)
                continue
            try:
                types.setdefault(kind, []).append(_definition(kind, param, by_url))
            except Unsupported as reason:
                unsupported.setdefault(kind, {})[param["code"]] = str(reason)
    kinds = json.loads(TYPES.read_text(encoding="utf-8"))["types"]
    stray = {b for p in params for b in p["base"]} - {*kinds, "Resource", "DomainResource"}
    if stray:
        raise SystemExit(f"search parameters of types R4 does not have: {sorted(stray)}")
    compartment = json.loads(COMPARTMENT.read_text(encoding="utf-8"))
    links = {**compartment["resource"], **compartment["additions"]}
    for kind, names in links.items():
        known = {p["name"]: p for p in types.get(kind, [])}
        for name in names:
            if name not in known or known[name]["type"] != "reference":
                raise SystemExit(f"compartment parameter {kind}.{name} is not an indexed reference parameter")
    return {
        "about": ABOUT,
        "common": sorted(common, key=lambda p: p["name"]),
        "types": {k: sorted(v, key=lambda p: p["name"]) for k, v in sorted(types.items())},
        "unsupported": {k: dict(sorted(v.items())) for k, v in sorted(unsupported.items())},
        "compartment": {k: list(v) for k, v in sorted(links.items())},
    }


def _types() -> str:
    source = json.loads(TYPES.read_text(encoding="utf-8"))
    about = "Derived by scripts/derive_search_parameters.py from " + TYPES.name + ": " + source["about"]
    return json.dumps({"about": about, "types": sorted(source["types"])}, indent=1) + "\n"


def main() -> int:
    derived = json.dumps(derive(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        for path, text in ((OUT, derived), (TYPES_OUT, _types())):
            if path.read_text(encoding="utf-8") != text:
                print(f"{path} is not what the script derives; run it again", file=sys.stderr)
                return 1
        return 0
    OUT.write_text(derived, encoding="utf-8")
    TYPES_OUT.write_text(_types(), encoding="utf-8")
    data = json.loads(derived)
    answered = sum(len(v) for v in data["types"].values()) + len(data["common"])
    refused = sum(len(v) for v in data["unsupported"].values())
    print(f"wrote {OUT}: {answered} parameter definitions answered, {refused} unsupported")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
