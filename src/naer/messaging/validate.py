"""Validate MedCom messages against MedCom's own profiles: one small engine over the StructureDefinitions.

Nothing here is written per message type. The engine walks a resource along a profile's snapshot
(``definitions.py``) and checks what the snapshot says: cardinalities, fixed values and patterns,
required bindings to the packaged value sets, slices and their discriminators, the target of every
reference inside the message, extensions against their own profiles, and every FHIRPath invariant
(by fhirpathpy, with ``resolve()``, ``conformsTo()``, ``memberOf()``, ``hasValue()`` and
``htmlChecks()`` supplied here, since the library has none of them). The base structure of each
resource (element names and primitive types) is the FHIR library's job (``naer.fhir.validate``).

Where the engine cannot decide, it says so instead of passing or failing silently: a code bound to a
value set the packages cannot expand (HL7's own value sets, or one defined by a filter) is not
checked, and docs/messaging.md lists those.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml
from fhirpathpy import apply_parsed_path
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from fhirpathpy.parser import parse

from naer.fhir import cpr
from naer.fhir.systems import CPR
from naer.fhir.validate import R4B_DIFFERS_FROM_R4, validation_errors
from naer.messaging import base_rules
from naer.messaging.definitions import Child, Definitions, Element, Profile, load

R4 = models["r4"]
SKEW = Path(__file__).with_name("version_skew.yaml")
TEST_DATA = Path(__file__).with_name("test_data.yaml")
HL7 = "http://hl7.org/fhir/StructureDefinition/"
NATIVE = {"ele-1"}  # checked by the engine itself (an element has a value or children): same rule, faster
FAST = True  # R4's own invariants answered in Python (base_rules.py); the tests turn it off to compare
TOKEN = re.compile(r"extension\('[^']*'\)|[^.]+")


@dataclass(frozen=True)
class Problem:
    """One finding: the rule broken (an invariant's key, or the kind of check), where, and what."""

    severity: str  # 'error', 'warning' or 'information'
    rule: str
    path: str
    message: str
    element: str = ""  # the profile's element id the rule belongs to, where there is one

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"


@dataclass
class Result:
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [each for each in self.problems if each.severity in ("error", "fatal")]

    @property
    def ok(self) -> bool:
        return not self.errors


_current: contextvars.ContextVar[_Run] = contextvars.ContextVar("medcom_validation")


def validate(resource: Any, profile: str | None = None, header: str | None = None) -> Result:
    """Validate ``resource`` (usually a message Bundle) against ``profile``, or against the profiles it
    names in ``meta.profile``; every resource inside a Bundle is validated against its own. ``header``:
    the profile the Bundle's MessageHeader must meet too (what the message's event requires, whatever
    the MessageHeader claims)."""
    run = _Run(load(), resource)
    token = _current.set(run)
    try:
        if not isinstance(resource, dict):
            return Result([Problem("error", "structure", "", "a FHIR resource is a JSON object")])
        claimed = [profile] if profile else _claimed(resource)
        run.guides = {url.split("|", 1)[0] for url in claimed}
        run.resource(resource, str(resource.get("resourceType", "?")), claimed)
        first = parts_first(resource)
        if header and first is not None and first.get("resourceType") == "MessageHeader":
            claims = {url.split("|", 1)[0] for url in _claimed(first)}
            if header.split("|", 1)[0] not in claims:
                run.problems.extend(run.conformance(first, header, "Bundle.entry[0].resource(MessageHeader)"))
    finally:
        _current.reset(token)
    return Result(_unique(run.problems))


def conforms(resource: dict[str, Any], profile: str) -> Result:
    """Validate one resource inside the message being validated (used by ``conformsTo``)."""
    run = _current.get(None)
    if run is None:
        return validate(resource, profile)
    return Result(run.conformance(resource, profile))


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    kept = []
    for each in problems:
        if each not in seen:
            seen.add(each)
            kept.append(each)
    return kept


class _Run:
    """One validation: the message, its entries by reference, and what has been checked already."""

    def __init__(self, definitions: Definitions, root: Any) -> None:
        self.defs = definitions
        self.root = root
        self.problems: list[Problem] = []
        self.targets: dict[str, dict[str, Any]] = {}
        self.checked: dict[tuple[int, str], list[Problem]] = {}
        self.guides: set[str] = set()  # the profiles the message itself claims (or is checked against)
        self.structured: set[int] = set()  # resources whose structure was checked with their Bundle
        if isinstance(root, dict) and root.get("resourceType") == "Bundle":
            for entry in root.get("entry") or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                    continue
                target = entry["resource"]
                if isinstance(entry.get("fullUrl"), str):
                    self.targets[entry["fullUrl"]] = target
                kind, ident = _kind(target), target.get("id")
                if isinstance(kind, str) and isinstance(ident, str):
                    self.targets.setdefault(f"{kind}/{ident}", target)

    # -- resources --------------------------------------------------------------------------------------

    def resource(self, resource: dict[str, Any], path: str, profiles: list[str] | None = None) -> None:
        """Check a resource's base structure, then walk it along each profile it claims."""
        if id(resource) not in self.structured:
            text = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
            for line in _structure(text) if len(text) <= MEMO_BYTES else _library(resource):
                self.problems.append(Problem("error", "structure", path, line))
            if resource.get("resourceType") == "Bundle":
                # The FHIR library checks a Bundle's resources with it (by their own models), unless one
                # is of a type R4B changed: then each is checked on its own.
                inner = [
                    e["resource"]
                    for e in resource.get("entry") or []
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                ]
                if not any(_kind(each) in R4B_DIFFERS_FROM_R4 for each in inner):
                    self.structured.update(id(each) for each in inner)
        if profiles is None:
            profiles = _claimed(resource)
        for url in profiles:
            found = self.defs.profile(url)
            if found is None:
                continue  # a profile outside MedCom's packages (DK-core's, HL7's): not checked here
            if found.type != resource.get("resourceType"):
                self.problems.append(
                    Problem("error", "profile", path, f"a {resource.get('resourceType')} cannot claim {url}")
                )
                continue
            self.problems.extend(self.conformance(resource, found.url, path))
        if resource.get("resourceType") == "Bundle" and not any(
            self.defs.profile(url) for url in profiles
        ):  # a Bundle with no known profile: its entries are still checked against their own
            for index, entry in enumerate(resource.get("entry") or []):
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    inner = entry["resource"]
                    self.resource(inner, f"{path}.entry[{index}].resource({inner.get('resourceType')})")

    def conformance(self, resource: dict[str, Any], url: str, path: str | None = None) -> list[Problem]:
        """Problems of ``resource`` against one profile, computed once per resource and profile and
        reported at ``path`` (the resource's place in the message) when one is given."""
        profile = self.defs.profile(url)
        if profile is None:
            return [Problem("error", "profile", path or "", f"unknown profile {url}")]
        key = (id(resource), profile.url)
        if key not in self.checked:
            self.checked[key] = []  # a reference cycle back to this resource adds nothing
            text = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
            # A resource that refers to nothing is judged by its own content alone: the same directory
            # entry in every message is walked once per process (the last MEMO results kept).
            alone = b'"reference"' not in text and len(text) <= MEMO_BYTES
            remembered = _alone.get((profile.url, text)) if alone else None
            if remembered is not None:
                self.checked[key] = [self.skewed(profile.url, each, resource) for each in remembered]
            else:
                found: list[Problem] = []
                self.walk(resource, "", profile.root, _name(resource), resource, found)
                if alone:  # (its invariants read nothing but itself: MedCom's resource profiles resolve
                    _remember(_alone, (profile.url, text), found)  # only references, and it has none)
                self.checked[key] = [self.skewed(profile.url, each, resource) for each in found]
        problems = self.checked[key]
        if path is None:
            return problems
        name = _name(resource)
        return [
            Problem(each.severity, each.rule, path + each.path[len(name) :], each.message, each.element)
            if each.path.startswith(name)
            else each
            for each in problems
        ]

    def skewed(self, profile: str, problem: Problem, resource: dict[str, Any]) -> Problem:
        """A warning instead of an error where the held package is stricter than the one the message's
        guide was built on (version_skew.yaml names each such rule), or where Nær's synthetic test data
        cannot meet a rule by construction (test_data.yaml)."""
        if problem.severity != "error":
            return problem
        for known in test_data():
            if (
                known["rule"] == problem.rule
                and known["profile"] == profile
                and _synthetic_patient(resource, known)
            ):
                note = f"{problem.message} (synthetic test data: {known['why']})"
                return Problem("warning", problem.rule, problem.path, note, problem.element)
        for known in skew():
            if (
                known["guide"] in self.guides
                and known["profile"] == profile
                and known["rule"] == problem.rule
                and known["element"] == problem.element
            ):
                note = f"{problem.message} ({known['held']}; the guide is built on {known['built_on']})"
                return Problem("warning", problem.rule, problem.path, note, problem.element)
        return problem

    # -- the walk ---------------------------------------------------------------------------------------

    def walk(
        self,
        value: Any,
        suffix: str,
        element: Element,
        path: str,
        resource: dict[str, Any],
        out: list[Problem],
        children_from: Element | None = None,
    ) -> None:
        """Check one value against one element, then its children."""
        if isinstance(value, dict) and not value:
            out.append(Problem("error", "ele-1", path, "an element must have a value or children"))
            return
        wrong = _shape_problem(element, suffix, value)
        if wrong is not None:
            out.append(Problem("error", "type", path, wrong, element.id))
            return
        is_period = suffix == "Period" or [k["code"] for k in element.types] == ["Period"]
        if (
            is_period and isinstance(value, dict) and _ends_before_start(value)
        ):  # R4's per-1 (not in snapshots)
            out.append(Problem("error", "per-1", path, "If present, start SHALL have a lower value than end"))
        if element.fixed is not None and value != element.fixed:
            out.append(Problem("error", "fixed", path, f"must be exactly {_show(element.fixed)}"))
        if element.pattern is not None and not _matches(value, element.pattern):
            out.append(Problem("error", "pattern", path, f"must match {_show(element.pattern)}"))
        if element.binding:
            self.binding(value, element.binding, path, out)
        kinds = element.types
        if isinstance(value, dict) and any(kind["code"] == "Reference" for kind in kinds):
            self.reference(value, element, path, out)
        for constraint in element.constraints:
            if constraint["key"] not in NATIVE:
                self.invariant(constraint, value, suffix, element, path, resource, out)
        if isinstance(value, dict) and "resourceType" in value and value is not resource:
            self.resource(value, f"{path}({value.get('resourceType')})")
            return
        source = children_from or element
        if not source.children:
            for kind in kinds:  # an extension or datatype the profile constrains by a profile of its own
                for url in kind.get("profile", []):
                    inner = self.defs.profile(url)
                    if inner is not None and isinstance(value, dict):
                        self.walk(value, suffix, inner.root, path, resource, out)
            return
        if not isinstance(value, dict):
            return
        for child in source.children:
            if child.skippable and child.name not in value:
                continue
            self.child(value, child, path, resource, out)

    def child(
        self, node: dict[str, Any], child: Child, path: str, resource: dict[str, Any], out: list[Problem]
    ) -> None:
        values = list(self.values(node, child, path, out))
        base = child.base
        where = f"{path}.{child.name}"
        if len(values) < base.min:
            out.append(
                Problem(
                    "error",
                    "cardinality",
                    where,
                    f"at least {base.min} required, {len(values)} found",
                    base.id,
                )
            )
        if base.upper is not None and len(values) > base.upper:
            out.append(
                Problem(
                    "error", "cardinality", where, f"at most {base.max} allowed, {len(values)} found", base.id
                )
            )
        if not child.slices:
            for index, (value, suffix, key) in enumerate(values):
                self.walk(value, suffix, base, _at(path, key, index, len(values)), resource, out)
            return
        counts = {each.id: 0 for each in child.slices}
        rules = (base.slicing or {}).get("rules", "open")
        for index, (value, suffix, key) in enumerate(values):
            here = _at(path, key, index, len(values))
            chosen = next((each for each in child.slices if self.in_slice(value, suffix, each, base)), None)
            if chosen is None:
                if rules == "closed":
                    names = ", ".join(each.id.rsplit(":", 1)[-1] for each in child.slices)
                    out.append(
                        Problem(
                            "error", "slice", here, f"matches none of the slices ({names}), which are closed"
                        )
                    )
                self.walk(value, suffix, base, here, resource, out)
                continue
            counts[chosen.id] += 1
            self.walk(value, suffix, chosen, here, resource, out, chosen if chosen.children else base)
        for each in child.slices:
            name = each.id.rsplit(":", 1)[-1]
            count = counts[each.id]
            if count < each.min:
                out.append(
                    Problem(
                        "error",
                        "cardinality",
                        f"{where}:{name}",
                        f"at least {each.min} required, {count} found",
                        each.id,
                    )
                )
            if each.upper is not None and count > each.upper:
                out.append(
                    Problem(
                        "error",
                        "cardinality",
                        f"{where}:{name}",
                        f"at most {each.max} allowed, {count} found",
                        each.id,
                    )
                )

    def values(
        self, node: dict[str, Any], child: Child, path: str, out: list[Problem]
    ) -> Iterator[tuple[Any, str, str]]:
        """(value, type suffix, JSON key) of each value of a child element in ``node``."""
        name = child.name
        if not name.endswith("[x]"):
            for item in _many(node.get(name)):
                yield item, "", name
            return
        prefix = name[:-3]
        allowed = {kind["code"][:1].upper() + kind["code"][1:] for kind in child.base.types}
        for key, raw in node.items():
            rest = key[len(prefix) :]
            if not key.startswith(prefix) or not rest[:1].isupper():
                continue
            if allowed and rest not in allowed:
                out.append(
                    Problem(
                        "error",
                        "type",
                        f"{path}.{key}",
                        f"{name} may be {', '.join(sorted(allowed))}, not {rest}",
                    )
                )
                continue
            for item in _many(raw):
                yield item, rest, key

    # -- slices -----------------------------------------------------------------------------------------

    def in_slice(self, value: Any, suffix: str, slice_: Element, base: Element) -> bool:
        for rule in (base.slicing or {}).get("discriminator", []):
            kind, where = rule.get("type"), rule.get("path", "$this")
            if kind in ("value", "pattern"):
                expected = _expected(slice_, where, self.defs)
                if expected is None:
                    return False
                if not any(_matches(actual, expected) for actual in _follow(value, where)):
                    return False
            elif kind == "type":
                if not self._type_matches(value, suffix, slice_, where):
                    return False
            elif kind == "profile":
                targets = [
                    url
                    for kind_ in slice_.types
                    for url in kind_.get("profile", []) + kind_.get("targetProfile", [])
                ]
                if not any(
                    isinstance(actual, dict) and not _errors(self.conformance(actual, url))
                    for actual in _follow(value, where)
                    for url in targets
                ):
                    return False
            else:
                return False
        return True

    def _type_matches(self, value: Any, suffix: str, slice_: Element, where: str) -> bool:
        if where == "$this":
            codes = {kind["code"] for kind in slice_.types}
            if suffix:
                return any(code[:1].upper() + code[1:] == suffix for code in codes)
            return isinstance(value, dict) and _kind(value) in codes
        step = where.removeprefix("$this.")
        inner = slice_.child(step + "[x]") or slice_.child(step)
        if inner is None or not isinstance(value, dict):
            return False
        codes = {kind["code"][:1].upper() + kind["code"][1:] for kind in inner.base.types}
        return any(key.startswith(step) and key[len(step) :] in codes for key in value)

    # -- bindings and references ------------------------------------------------------------------------

    def binding(self, value: Any, url: str, path: str, out: list[Problem]) -> None:
        allowed = self.defs.valueset(url)
        if allowed is None:
            return  # HL7's own value sets and MedCom's filtered ones: docs/messaging.md
        if isinstance(value, str):
            if value not in {code for _, code in allowed}:
                out.append(Problem("error", "binding", path, f"code {value!r} is not in {url}"))
            return
        if not isinstance(value, dict):
            return
        codings = value.get("coding") if "coding" in value or "text" in value else [value]
        pairs = [
            (each.get("system"), each.get("code"))
            for each in _many(codings)
            if isinstance(each, dict)
            and isinstance(each.get("system"), (str, type(None)))
            and isinstance(each.get("code"), (str, type(None)))
        ]
        if not any(pair in allowed for pair in pairs):
            shown = ", ".join(f"{system}#{code}" for system, code in pairs) or "no coding"
            out.append(Problem("error", "binding", path, f"{shown} is not in {url}"))

    def reference(self, value: dict[str, Any], element: Element, path: str, out: list[Problem]) -> None:
        ref = value.get("reference")
        targets = [url for kind in element.types for url in kind.get("targetProfile", [])]
        if not isinstance(ref, str) or not targets:
            return
        target = self.resolve(ref)
        if target is None:
            if isinstance(self.root, dict) and self.root.get("resourceType") == "Bundle":
                # A Provenance names the earlier messages of the history by their MessageHeader, which
                # the message does not carry; any other reference must resolve inside the message.
                earlier = ref.rstrip("/").split("/")[-2:-1] == ["MessageHeader"]
                out.append(
                    Problem(
                        "information" if earlier else "error",
                        "reference",
                        f"{path}.reference",
                        f"{ref!r} refers to nothing in the message",
                    )
                )
            return
        kinds = {self._profile_type(url) for url in targets}
        if _kind(target) not in kinds and not kinds & {"Resource", "DomainResource"}:
            wanted = " or ".join(sorted(filter(None, kinds)))
            out.append(
                Problem(
                    "error",
                    "reference",
                    f"{path}.reference",
                    f"{ref!r} is a {target.get('resourceType')}, not a {wanted}",
                )
            )
            return
        known = [url for url in targets if self.defs.profile(url) is not None]
        claimed = {url.split("|", 1)[0] for url in _claimed(target)}
        if not known or any(url.split("|", 1)[0] in claimed for url in known):
            return  # the target is checked against that profile where it stands, and reported there
        failures = [(url, _errors(self.conformance(target, url))) for url in known]
        if all(problems for _, problems in failures):
            url, problems = failures[0]
            out.append(
                Problem(
                    "error",
                    "reference",
                    f"{path}.reference",
                    f"{ref!r} does not conform to {url}: {problems[0]}",
                )
            )

    def _profile_type(self, url: str) -> str | None:
        found = self.defs.profile(url)
        if found is not None:
            return found.type
        if url.startswith(HL7):
            return url.split("|", 1)[0].rsplit("/", 1)[-1]
        held = self.defs.profiles.get(url.split("|", 1)[0])  # another version of one held: same type
        return held.type if held is not None else None

    def resolve(self, ref: str) -> dict[str, Any] | None:
        found = self.targets.get(ref)
        if found is None and "/" in ref and not ref.startswith("urn:"):
            parts = ref.rstrip("/").split("/")
            if len(parts) >= 2:
                found = self.targets.get(f"{parts[-2]}/{parts[-1]}")
        return found

    # -- invariants -------------------------------------------------------------------------------------

    def invariant(
        self,
        constraint: dict[str, str],
        value: Any,
        suffix: str,
        element: Element,
        path: str,
        resource: dict[str, Any],
        out: list[Problem],
    ) -> None:
        expression = constraint["expression"]
        known = base_rules.answer(constraint["key"], expression, value) if FAST else None
        if known is not None:
            if not known:
                severity = "error" if constraint.get("severity", "error") == "error" else "warning"
                human = constraint.get("human") or expression
                out.append(Problem(severity, constraint["key"], path, human, element.id))
            return
        if "." in element.id or not isinstance(value, dict) or "resourceType" not in value:
            data: Any = ResourceNode.create_node(value, _type_path(element, suffix))
        else:
            data = value
        if not isinstance(value, (dict, list)) and expression.startswith("value."):
            expression = expression[len("value.") :]  # a primitive's own value, as FHIR's FHIRPath reads it
        context = {"resource": resource, "rootResource": self.root}
        try:
            result = apply_parsed_path(data, _parsed(expression), context, R4, OPTIONS)
        except Exception as exc:
            out.append(Problem("warning", constraint["key"], path, f"could not be evaluated ({exc})"))
            return
        if result != [True]:
            severity = "error" if constraint.get("severity", "error") == "error" else "warning"
            out.append(
                Problem(severity, constraint["key"], path, constraint.get("human") or expression, element.id)
            )


_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_MONTH = r"(0[1-9]|1[0-2])"
# R4's own regular expressions for its primitive types (datatypes.html), for values in FHIR JSON.
FORMATS = {
    "date": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?"),
    "dateTime": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_CLOCK}{_ZONE})?)?)?"),
    "instant": re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}T{_CLOCK}{_ZONE}"),
    "time": re.compile(_CLOCK),
    "id": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
    "code": re.compile(r"[^\s]+( [^\s]+)*"),
}
STRINGS = frozenset(
    [
        "string",
        "code",
        "id",
        "uri",
        "url",
        "canonical",
        "markdown",
        "oid",
        "uuid",
        "base64Binary",
        "xhtml",
        "date",
        "dateTime",
        "instant",
        "time",
    ]
)
INTEGERS = {"integer": -(2**31), "positiveInt": 1, "unsignedInt": 0}


def _shape_problem(element: Element, suffix: str, value: Any) -> str | None:
    """Why a JSON value is not of the element's FHIR type (R4's JSON rules, strictly: the FHIR library
    would take "true" for a boolean and 1700000000 for a dateTime), or None."""
    if suffix:  # a choice element's JSON name says its type: valueDateTime, valueCoding
        lowered = suffix[:1].lower() + suffix[1:]
        primitive = lowered in STRINGS or lowered in INTEGERS or lowered in ("boolean", "decimal")
        code = lowered if primitive else suffix
    else:
        codes = [kind["code"] for kind in element.types]
        if len(codes) != 1:
            return None
        code = codes[0]
        if code.startswith("http://hl7.org/fhirpath/System."):  # an element's id, an extension's url
            # (a resource's own id is FHIR's id type: at most 64 letters, digits, '-' and '.')
            code = "id" if element.path.count(".") == 1 and element.path.endswith(".id") else "string"
    if code == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if code in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or not INTEGERS[code] <= value < 2**31:
            return f"must be a whole number (FHIR {code})"
        return None
    if code == "decimal":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"
    if code in STRINGS:
        if not isinstance(value, str) or not value.strip():
            return f"must be a text (FHIR {code}), not empty"
        pattern = FORMATS.get(code)
        if pattern is not None and not pattern.fullmatch(value):
            return f"{value[:40]!r} is not a FHIR {code}"
        return None
    if code[:1].isupper() and code not in ("Resource", "DomainResource") and not isinstance(value, dict):
        return f"must be an object (FHIR {code})"
    return None


def _ends_before_start(period: dict[str, Any]) -> bool:
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return False
    try:
        low, high = datetime.fromisoformat(start), datetime.fromisoformat(end)
        if (low.tzinfo is None) != (high.tzinfo is None):
            return start[:10] > end[:10]
        return low > high
    except (ValueError, OverflowError):
        return start[: min(len(start), len(end))] > end[: min(len(start), len(end))]


def _type_path(element: Element, suffix: str) -> str:
    """The model path fhirpathpy types a value by: its datatype where it has one, else its element."""
    if suffix:
        return suffix
    codes = [kind["code"] for kind in element.types]
    if len(codes) == 1 and codes[0][:1].isupper() and codes[0] not in ("BackboneElement", "Element"):
        return str(codes[0])
    return element.path


# -- helpers ----------------------------------------------------------------------------------------------


def parts_first(bundle: dict[str, Any]) -> dict[str, Any] | None:
    """A Bundle's first resource (a message's MessageHeader), whatever the shape around it."""
    entries = bundle.get("entry")
    first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else None
    resource = first.get("resource") if first is not None else None
    return resource if isinstance(resource, dict) else None


def _kind(resource: Any) -> str | None:
    """A resource's type, if it names one as text (a hostile message may put anything there)."""
    found = resource.get("resourceType") if isinstance(resource, dict) else None
    return found if isinstance(found, str) else None


def _claimed(resource: dict[str, Any]) -> list[str]:
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    return [url for url in claimed if isinstance(url, str)] if isinstance(claimed, list) else []


@cache
def skew() -> list[dict[str, str]]:
    """The rules where a held package is stricter than a guide's own (version_skew.yaml)."""
    entries = yaml.safe_load(SKEW.read_text(encoding="utf-8"))
    return [
        {
            "guide": each["guide"],
            "profile": each["profile"],
            "rule": each["rule"],
            "element": each["element"],
            "held": each["held"],
            "built_on": each["built_on"],
        }
        for each in entries
    ]


@cache
def test_data() -> list[dict[str, Any]]:
    """The rules Nær's synthetic test data cannot meet by construction (test_data.yaml)."""
    return list(yaml.safe_load(TEST_DATA.read_text(encoding="utf-8")))


def _synthetic_patient(resource: dict[str, Any], known: dict[str, Any]) -> bool:
    """A Patient tagged as test data whose CPR numbers are all synthetic (day + 60)."""
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    wanted = known["tag"]
    if not isinstance(tags, list) or not any(
        isinstance(t, dict) and t.get("system") == wanted["system"] and t.get("code") == wanted["code"]
        for t in tags
    ):
        return False
    numbers = [
        each.get("value")
        for each in resource.get("identifier") or []
        if isinstance(each, dict) and each.get("system") == CPR
    ]
    if not numbers:
        return False
    for number in numbers:
        try:
            if not isinstance(number, str) or not cpr.parse(number).synthetic:
                return False
        except cpr.CprError:
            return False
    return True


def _errors(problems: list[Problem]) -> list[Problem]:
    return [each for each in problems if each.severity == "error"]


def _name(resource: dict[str, Any]) -> str:
    return str(resource.get("resourceType", "?"))


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _at(path: str, key: str, index: int, count: int) -> str:
    return f"{path}.{key}[{index}]" if count > 1 or key in _LISTS else f"{path}.{key}"


_LISTS = {"entry", "extension", "identifier", "coding", "destination", "payload", "agent", "entity"}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _matches(value: Any, pattern: Any) -> bool:
    """FHIR's pattern rule: every part of the pattern is in the value (a list: each item somewhere)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(value.get(key), part) for key, part in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(_matches(item, part) for item in items) for part in pattern)
    return bool(value == pattern)


def _follow(value: Any, where: str) -> list[Any]:
    """The values a discriminator's path selects (dotted steps, ``extension('url')`` and ``value``)."""
    current = [value]
    for token in TOKEN.findall(where):
        if token == "$this":
            continue
        found: list[Any] = []
        for node in current:
            if not isinstance(node, dict):
                continue
            if token.startswith("extension('"):
                url = token[len("extension('") : -2]
                found.extend(
                    each
                    for each in _many(node.get("extension"))
                    if isinstance(each, dict) and each.get("url") == url
                )
            elif token == "value":
                found.extend(
                    item
                    for key, raw in node.items()
                    if key.startswith("value") and key[5:6].isupper()
                    for item in _many(raw)
                )
            else:
                found.extend(_many(node.get(token)))
        current = found
    return current


def _expected(slice_: Element, where: str, defs: Definitions) -> Any:
    """The value a slice fixes at a discriminator's path (fixed or pattern, or inside a pattern)."""
    tokens = [token for token in TOKEN.findall(where) if token != "$this"]
    if tokens == ["url"] and not slice_.child("url"):
        profiles = [url for kind in slice_.types for url in kind.get("profile", [])]
        return profiles[0].split("|", 1)[0] if profiles else None
    return _expected_at(slice_, tokens, defs)


def _expected_at(current: Element, tokens: list[str], defs: Definitions) -> Any:
    if not tokens:
        return current.fixed if current.fixed is not None else current.pattern
    token, rest = tokens[0], tokens[1:]
    owned = [url for kind in current.types for url in kind.get("profile", [])]
    if not current.children and owned:  # the element is constrained by a profile of its own
        if tokens == ["system"]:
            for url in owned:
                if url in defs.identifier_systems:
                    return defs.identifier_systems[url]
        for url in owned:
            inner = defs.profile(url)
            if inner is not None:
                found = _expected_at(inner.root, tokens, defs)
                if found is not None:
                    return found
    candidates: list[Element] = []
    if token.startswith("extension('"):
        url = token[len("extension('") : -2]
        holder = current.child("extension")
        for candidate in holder.slices if holder else []:
            fixed_url = candidate.child("url")
            owned = [p.split("|", 1)[0] for kind in candidate.types for p in kind.get("profile", [])]
            if (fixed_url and fixed_url.base.fixed == url) or url in owned:
                candidates.append(candidate)
    else:
        step = current.child("value[x]" if token == "value" else token) or current.child(token + "[x]")
        if step is not None:
            candidates = [step.base, *step.slices]
    for candidate in candidates:
        found = _expected_at(candidate, rest, defs)
        if found is not None:
            return found
    known = current.fixed if current.fixed is not None else current.pattern
    for step_name in tokens:  # the rest of the path inside a fixed or pattern value
        if not isinstance(known, dict):
            return None
        if step_name == "value":
            keys = [key for key in known if key.startswith("value") and key[5:6].isupper()]
            known = known.get(keys[0]) if keys else None
        else:
            known = known.get(step_name)
    return known


@cache
def _parsed(expression: str) -> Any:
    return parse(expression)


MEMO = 4096  # resources remembered per process, by their content
MEMO_BYTES = 64 * 1024  # larger resources (attachments) are checked every time
_alone: dict[tuple[str, bytes], list[Problem]] = {}
_structures: dict[bytes, list[str]] = {}


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if MEMO <= 0:
        return
    while len(memo) >= MEMO:
        memo.pop(next(iter(memo)))  # the oldest first: a bounded memory of the directory's entries
    memo[key] = value


def _structure(text: bytes) -> list[str]:
    """The FHIR library's findings for a resource, once per content."""
    found = _structures.get(text)
    if found is None:
        found = _library(orjson.loads(text))
        _remember(_structures, text, found)
    return found


def _library(resource: dict[str, Any]) -> list[str]:
    try:
        return validation_errors(resource)
    except Exception as exc:
        return [f"{_kind(resource) or 'resource'}: not readable by the FHIR library ({type(exc).__name__})"]


# -- FHIRPath functions fhirpathpy lacks ------------------------------------------------------------------


def _resolve(inputs: list[Any]) -> list[Any]:
    run = _current.get(None)
    found = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item
        if run is not None and isinstance(ref, str):
            target = run.resolve(ref)
            if target is not None:
                found.append(target)
    return found


def _conforms_to(inputs: list[Any], url: Any) -> list[bool]:
    run = _current.get(None)
    if run is None or not isinstance(url, str):
        return []
    results = []
    for item in inputs:
        if isinstance(item, dict) and "resourceType" in item:
            results.append(not _errors(run.conformance(item, url)))
    return results if len(results) <= 1 else [all(results)]


def _member_of(inputs: list[Any], url: Any) -> list[bool]:
    run = _current.get(None)
    if run is None or not isinstance(url, str):
        return []
    allowed = run.defs.valueset(url)
    if allowed is None:
        return []
    results = []
    for item in inputs:
        found: list[Problem] = []
        run.binding(item, url, "", found)
        results.append(not found)
    return results


def _has_value(inputs: list[Any]) -> list[bool]:
    return [len(inputs) == 1 and isinstance(inputs[0], (str, int, float, bool))]


def _html_checks(inputs: list[Any]) -> list[bool]:
    from naer.messaging.xhtml import narrative_problem

    return [all(isinstance(item, str) and narrative_problem(item) is None for item in inputs)]


def _entry(fn: Callable[..., Any], arity: dict[int, list[str]] | None = None) -> dict[str, Any]:
    return {"fn": fn, "arity": arity} if arity else {"fn": fn}


OPTIONS: dict[str, Any] = {
    "traceFn": lambda *_: None,  # dom-3 traces unmatched ids; the finding itself is the invariant's
    "userInvocationTable": {
        "resolve": _entry(_resolve),
        "conformsTo": _entry(_conforms_to, {1: ["String"]}),
        "memberOf": _entry(_member_of, {1: ["String"]}),
        "hasValue": _entry(_has_value),
        "htmlChecks": _entry(_html_checks),
    },
}


def profile_of(url: str) -> Profile | None:
    return load().profile(url)
