"""Who a message is about and between, in Nær's own terms: organisations by SOR code, citizens by CPR
number, and whether an organisation serves a citizen.

The gateway acts as a system client, so these lookups read the store's index directly; what a person
may then see of a message is decided by the message's organisation (``pages``) and the audit entry
names the citizen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, exists, select
from sqlalchemy.engine import Connection

from naer.access.conditions import micros
from naer.fhir.systems import CPR, MUNICIPALITY_CODES, MUNICIPALITY_EXTENSION, SOR
from naer.messaging import parts
from naer.messaging.parts import GLN, Party, synthetic_gln
from naer.store.tables import care_relation, resources
from naer.store.tables import search_token as token

MAX_DEPTH = 8  # partOf steps followed upwards (a directory loop stops here)


@dataclass(frozen=True)
class Unit:
    """A Nær organisation as messaging needs it."""

    id: str
    party: Party
    municipality: str | None  # the municipality code of the unit or the first one above it


def _content(con: Connection, kind: str, rid: str) -> dict[str, Any] | None:
    row = con.execute(
        select(resources.c.content).where(
            resources.c.resource_type == kind, resources.c.id == rid, resources.c.deleted.is_(False)
        )
    ).first()
    if row is None or row[0] is None:
        return None
    found = orjson.loads(row[0])
    return found if isinstance(found, dict) else None


def _by_identifier(con: Connection, kind: str, system: str, value: str) -> str | None:
    row = con.execute(
        select(token.c.id)
        .where(
            token.c.resource_type == kind,
            token.c.param == "identifier",
            token.c.system == system,
            token.c.code == value,
        )
        .limit(1)
    ).first()
    return str(row[0]) if row else None


def unit(con: Connection, sor: str) -> Unit | None:
    """The Nær organisation with SOR code ``sor``. Remembered for a minute per process (every message
    names its receiver; the directory changes seldom), an unknown code not at all."""
    key = (str(con.engine.url), sor)
    known = _units.get(key)
    moment = time.monotonic()
    if known is not None and moment - known[0] < UNIT_SECONDS:
        return known[1]
    rid = _by_identifier(con, "Organization", SOR, sor)
    found = unit_by_id(con, rid) if rid else None
    if found is not None:
        if len(_units) > 10_000:
            _units.clear()
        _units[key] = (moment, found)
    return found


UNIT_SECONDS = 60.0
_units: dict[tuple[str, str], tuple[float, Unit]] = {}


def unit_by_id(con: Connection, rid: str) -> Unit | None:
    org = _content(con, "Organization", rid)
    if org is None:
        return None
    codes = _codes(org)
    sor = codes.get(SOR)
    if not parts.is_sor(sor):  # a unit whose SOR code is not one cannot be addressed: no messages
        return None
    assert sor is not None
    municipality = codes.get(MUNICIPALITY_CODES)
    parent = org
    for _ in range(MAX_DEPTH):
        if municipality:
            break
        ref = (parent.get("partOf") or {}).get("reference", "")
        if not isinstance(ref, str) or not ref.startswith("Organization/"):
            break
        parent = _content(con, "Organization", ref.split("/", 1)[1]) or {}
        municipality = _codes(parent).get(MUNICIPALITY_CODES)
    name = parts.plain(org["name"])[:200] if isinstance(org.get("name"), str) else ""
    gln = codes.get(GLN)
    party = Party(
        sor=sor, gln=gln if gln is not None and parts.is_gln(gln) else synthetic_gln(sor), name=name or sor
    )
    return Unit(id=rid, party=party, municipality=municipality)


def _codes(org: dict[str, Any]) -> dict[str, str]:
    return {
        str(each["system"]): str(each["value"])
        for each in org.get("identifier") or []
        if isinstance(each, dict)
        and isinstance(each.get("system"), str)
        and isinstance(each.get("value"), str)
    }


def citizen(con: Connection, cpr: str, system: str = CPR) -> str | None:
    """The Patient id of the citizen with CPR number ``cpr`` (or a replacement CPR in ``system``)."""
    return _by_identifier(con, "Patient", system, cpr)


def patient_content(con: Connection, patient: str) -> dict[str, Any] | None:
    return _content(con, "Patient", patient)


def municipality_of(patient: dict[str, Any]) -> str | None:
    """The municipality of the citizen's current address (DK-core's municipality extension)."""
    for address in reversed(patient.get("address") or []):
        if not isinstance(address, dict) or (address.get("period") or {}).get("end"):
            continue
        for ext in address.get("extension") or []:
            if isinstance(ext, dict) and ext.get("url") == MUNICIPALITY_EXTENSION:
                for coding in (ext.get("valueCodeableConcept") or {}).get("coding") or []:
                    if isinstance(coding, dict) and coding.get("system") == MUNICIPALITY_CODES:
                        return str(coding.get("code"))
    return None


def serves(con: Connection, unit: Unit, patient: str, now: datetime) -> bool:
    """Does ``unit`` serve the citizen: a current care relation of the access policy between them (home
    care, an acute bed, an open encounter, the GP, a care team ...), or, for a municipal unit, the
    citizen living in its municipality?"""
    moment = micros(now)
    related = con.execute(
        select(
            exists().where(
                and_(
                    care_relation.c.party_type == "Organization",
                    care_relation.c.party_id == unit.id,
                    care_relation.c.patient_id == patient,
                    care_relation.c.low <= moment,
                    care_relation.c.high >= moment,
                )
            )
        )
    ).scalar()
    if related:
        return True
    if unit.municipality is None:
        return False
    content = patient_content(con, patient)
    return content is not None and municipality_of(content) == unit.municipality
