"""SMART App Launch v2 scopes (``patient/*.rs``, ``user/Observation.cruds``, ``system/*.rs``,
``patient/Observation.rs?category=laboratory``), with v1's ``read``/``write``/``*`` understood.

Scopes only narrow: a request passes when the asker's role allows it (policy.yaml) *and* a scope does.
``openid``, ``fhirUser``, ``launch/patient``, ``offline_access`` and the like grant nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from naer.errors import UserError

SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\."
    r"(?P<what>\*|read|write|[cruds]{1,5})(\?(?P<query>[^\s]+))?$"
)
V1 = {"*": "cruds", "read": "rs", "write": "cud"}
ORDER = "cruds"
ALL = "user/*.cruds"


@dataclass(frozen=True)
class Scope:
    context: str
    resource_type: str  # "*" for any
    letters: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()  # granular: search parameters the resources must match

    def covers(self, letter: str, resource_type: str | None) -> bool:
        return letter in self.letters and (self.resource_type == "*" or self.resource_type == resource_type)


def parse_scope(text: str) -> Scope | None:
    """A resource scope, or None for a scope that grants no resource access (openid, launch ...);
    UserError for a resource scope written wrong."""
    if "/" not in text or text.startswith(("launch/", "http")):
        return None
    match = SCOPE.match(text)
    if not match:
        raise UserError(f"{text!r} is not a SMART scope such as patient/*.rs or user/Observation.cruds")
    what = match["what"]
    letters = V1.get(what, what)
    if what not in V1 and "".join(sorted(letters, key=ORDER.index)) != letters:
        raise UserError(f"{text!r}: the letters of a SMART v2 scope come in the order c, r, u, d, s")
    query = tuple(parse_qsl(match["query"], keep_blank_values=False)) if match["query"] else ()
    return Scope(match["context"], match["type"], frozenset(letters), query)


@dataclass(frozen=True)
class Scopes:
    granted: tuple[Scope, ...]
    text: str

    def allows(self, letter: str, resource_type: str | None) -> bool:
        """Does some scope allow ``letter`` (c, r, u, d, s) on ``resource_type`` (None: on every type,
        as a system-level export or history asks)?"""
        if resource_type is None:
            return any(s.resource_type == "*" and letter in s.letters for s in self.granted)
        return any(s.covers(letter, resource_type) for s in self.granted)

    def filters(self, letter: str, resource_type: str) -> list[tuple[tuple[str, str], ...]] | None:
        """The granular queries that limit ``letter`` on ``resource_type``: None when a scope without a
        query allows it (no limit), else each allowing scope's query (a resource must match one)."""
        found = [s.query for s in self.granted if s.covers(letter, resource_type)]
        if not found or any(not q for q in found):
            return None
        return found

    @property
    def patient_context(self) -> bool:
        """Only patient/ scopes: the token is for one citizen's compartment (its ``patient`` claim)."""
        return bool(self.granted) and all(s.context == "patient" for s in self.granted)


def parse_scopes(text: str) -> Scopes:
    granted = tuple(s for s in (parse_scope(t) for t in text.split()) if s is not None)
    return Scopes(granted, " ".join(text.split()))


def narrow(asked: str, allowed: str) -> str:
    """The scopes of ``asked`` that ``allowed`` covers (a client asks, the account permits): each asked
    resource scope is kept when one allowed scope covers all its letters and its type."""
    permitted = parse_scopes(allowed).granted
    kept = []
    for text in asked.split():
        scope = parse_scope(text)
        if scope is None:
            kept.append(text)
            continue
        if any(
            (p.resource_type == "*" or p.resource_type == scope.resource_type)
            and scope.letters <= p.letters
            and (not p.query or p.query == scope.query)
            and p.context in (scope.context, "user", "system")
            for p in permitted
        ):
            kept.append(text)
    return " ".join(kept)
