"""The access policy as data: ``policy.yaml`` read into typed rules and checked against the store's
search definitions, so that a reviewer's typo (a parameter that does not exist) fails at start, not as
a silent "nobody may see anything"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from naer.errors import UserError
from naer.store.search.definitions import params_of

POLICY = Path(__file__).with_name("policy.yaml")
SELF = "_self"
RECORDS = ("relations", "own", "all", "none")
LETTERS = frozenset("cruds")
DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[mhd])$")
MICROS = {"m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def micros(text: str) -> int:
    """A duration such as 72h, 30m or 2d, in microseconds."""
    match = DURATION.match(str(text))
    if not match:
        raise UserError(f"policy: {text!r} is not a duration such as 72h, 30m or 2d")
    return int(match["n"]) * MICROS[match["unit"]]


@dataclass(frozen=True)
class Relation:
    """One kind of care relation, found in the search index (see policy.yaml)."""

    name: str
    description: str
    resource: str
    patient: tuple[str, ...]  # reference parameters naming the citizen; ("_self",) for Patient itself
    party: tuple[str, ...]
    status: tuple[str, ...] = ()
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    period: str | None = None
    longer_than: int | None = None  # microseconds
    after_end: int = 0


@dataclass(frozen=True)
class Blocks:
    resource: str
    patient: tuple[str, ...]
    party: tuple[str, ...]
    status: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...]
    period: str | None
    sub_units_role: str


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    records: str
    relations: tuple[str, ...]
    interactions: frozenset[str]
    directory: frozenset[str]
    break_glass: bool = False
    dashboard: bool = False
    audit: bool = False
    own_log: bool = False
    bulk: bool = False
    worklist: str | None = None
    competences: bool = False  # keeps the shared competence register


@dataclass(frozen=True)
class Policy:
    relations: dict[str, Relation]
    blocks: Blocks
    roles: dict[str, Role]
    glass_duration: int  # microseconds
    glass_purposes: tuple[str, ...]
    reason_min_length: int
    suppress_below: int
    source: str = field(default="", compare=False)


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UserError(f"policy: {what} must be a name or a list of names, not {value!r}")
    return tuple(value)


def _param(resource: str, name: str, kind: str, what: str) -> None:
    param = params_of(resource).get(name)
    if param is None or param.type != kind:
        raise UserError(f"policy: {what}: {resource} has no {kind} search parameter {name!r}")


def _where(resource: str, value: Any, what: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise UserError(f"policy: {what}.where must map token parameters to codes")
    for name in value:
        _param(resource, name, "token", f"{what}.where")
    return tuple((name, _names(codes, f"{what}.where.{name}")) for name, codes in value.items())


def _relation(name: str, spec: dict[str, Any]) -> Relation:
    what = f"relations.{name}"
    resource = spec.get("resource")
    if not isinstance(resource, str) or not params_of(resource):
        raise UserError(f"policy: {what}.resource {resource!r} is not a searchable type")
    patient = _names(spec.get("patient"), f"{what}.patient")
    if patient != (SELF,):
        for p in patient:
            _param(resource, p, "reference", f"{what}.patient")
    party = _names(spec.get("party"), f"{what}.party")
    for p in party:
        _param(resource, p, "reference", f"{what}.party")
    status = _names(spec["status"], f"{what}.status") if "status" in spec else ()
    if status:
        _param(resource, "status", "token", what)
    period = spec.get("period")
    if period is not None:
        _param(resource, period, "date", f"{what}.period")
    longer = spec.get("longer_than")
    return Relation(
        name=name,
        description=str(spec.get("description", "")).strip(),
        resource=resource,
        patient=patient,
        party=party,
        status=status,
        where=_where(resource, spec.get("where"), what),
        period=period,
        longer_than=micros(longer) if longer is not None else None,
        after_end=micros(spec["after_end"]) if "after_end" in spec else 0,
    )


def _role(name: str, spec: dict[str, Any], relations: dict[str, Relation]) -> Role:
    records = spec.get("records")
    if records not in RECORDS:
        raise UserError(f"policy: roles.{name}.records must be one of {', '.join(RECORDS)}")
    chosen = _names(spec["relations"], f"roles.{name}.relations") if "relations" in spec else ()
    unknown = [r for r in chosen if r not in relations]
    if unknown:
        raise UserError(f"policy: roles.{name} names unknown relations {unknown}")
    letters = {k: frozenset(str(spec.get(k) or "")) for k in ("interactions", "directory")}
    for key, given in letters.items():
        if not given <= LETTERS:
            raise UserError(f"policy: roles.{name}.{key} takes the letters c, r, u, d, s")
    return Role(
        name=name,
        description=str(spec.get("description", "")),
        records=records,
        relations=chosen,
        interactions=letters["interactions"],
        directory=letters["directory"],
        break_glass=bool(spec.get("break_glass", False)),
        dashboard=bool(spec.get("dashboard", False)),
        audit=bool(spec.get("audit", False)),
        own_log=bool(spec.get("own_log", False)),
        bulk=bool(spec.get("bulk", False)),
        worklist=spec.get("worklist"),
        competences=bool(spec.get("competences", False)),
    )


def parse(text: str) -> Policy:
    """A policy from its YAML text (UserError saying what is wrong)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise UserError("policy: expected a mapping with version: 1")
    relations = {n: _relation(n, s) for n, s in (data.get("relations") or {}).items()}
    spec = data.get("blocks") or {}
    resource = spec.get("resource", "Consent")
    for p in _names(spec.get("patient"), "blocks.patient") + _names(spec.get("party"), "blocks.party"):
        _param(resource, p, "reference", "blocks")
    if spec.get("period"):
        _param(resource, spec["period"], "date", "blocks.period")
    blocks = Blocks(
        resource=resource,
        patient=_names(spec.get("patient"), "blocks.patient"),
        party=_names(spec.get("party"), "blocks.party"),
        status=_names(spec.get("status", ["active"]), "blocks.status"),
        where=_where(resource, spec.get("where"), "blocks"),
        period=spec.get("period"),
        sub_units_role=str(spec.get("sub_units_role", "with-sub-units")),
    )
    roles = {n: _role(n, s, relations) for n, s in (data.get("roles") or {}).items()}
    glass = data.get("break_glass") or {}
    return Policy(
        relations=relations,
        blocks=blocks,
        roles=roles,
        glass_duration=micros(glass.get("duration", "4h")),
        glass_purposes=_names(glass.get("purposes", ["ETREAT"]), "break_glass.purposes"),
        reason_min_length=int(glass.get("reason_min_length", 10)),
        suppress_below=int(data.get("suppress_below", 5)),
        source=text,
    )


@cache
def policy() -> Policy:
    """The policy file shipped with Nær (read once)."""
    return parse(POLICY.read_text(encoding="utf-8"))
