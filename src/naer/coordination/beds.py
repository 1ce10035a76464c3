"""Municipal acute beds (akutpladser): the beds of each acute unit, admission to a bed with the
responsible physician, discharge, and occupancy now and over time.

In FHIR a unit's beds are Locations (``physicalType`` bd) that are ``partOf`` the unit's own Location and
managed by the unit's Organization; a stay is an Encounter (class IMP, contact type acute-bed, as the
synthetic population and the acute-bed indicator have them) at the unit (``serviceProvider``) in one bed
(``location``), with the responsible physician as its attender (``participant`` ATND). A stay is open
while the Encounter is in progress. Admissions to one unit are serialised by a lock on the unit's
Location row, so two nurses admitting at once can never put two citizens in the last bed; a full unit is
refused with a clear reason and nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from naer import clock
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.fhir.systems import ACT_CODE, CONTACT_TYPE, DISCHARGE_DISPOSITION, ORG_KIND
from naer.store import resources as store
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Conflict, Forbidden, Invalid, Unprocessable
from naer.store.search.query import search
from naer.store.tables import resources

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
OPEN = ("planned", "arrived", "triaged", "in-progress", "onleave")
DISPOSITIONS = ("home", "alt-home", "other-hcf", "hosp", "snf", "long", "exp", "oth")
NURSES = ("acute-bed-nurse", "home-care-nurse", "gp", "hospital-physician")
PHYSICIAN_SECTORS = ("region", "general-practice")
MAX_BEDS = 200
MAX_DAYS = 3 * 366


def unit_location_id(unit: str) -> str:
    return f"{unit}-unit"


def bed_id(unit: str, n: int) -> str:
    return f"{unit}-bed-{n}"


def provide_beds(db: Engine, unit: str, count: int) -> list[str]:
    """Make (or keep) ``count`` beds for the acute unit ``unit`` (an Organization of kind
    municipal-acutebeds): its Location and one Location per bed. For `naer coordination beds` and the
    demo; a bed beyond ``count`` that exists already is set inactive, never deleted."""
    if not 1 <= count <= MAX_BEDS:
        raise Invalid(f"an acute unit has 1 to {MAX_BEDS} beds", where="beds")
    org = v.directory(db, "Organization", v.ident(unit, "unit"))
    if org is None:
        raise Unprocessable(f"there is no Organization/{unit}", where="unit")
    name = str(org.get("name", unit))
    managed = {"reference": f"Organization/{unit}", "display": name}
    made = []
    with db.begin() as con:
        store.update(con, SYSTEM, "Location", unit_location_id(unit), {
            "resourceType": "Location", "id": unit_location_id(unit), "status": "active", "name": name,
            "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": "wa", "display": "Ward"}]},
            "managingOrganization": managed,
        })  # fmt: skip
        n = 1
        while n <= count or v.directory(con, "Location", bed_id(unit, n)) is not None:
            status = "active" if n <= count else "inactive"
            store.update(con, SYSTEM, "Location", bed_id(unit, n), {
                "resourceType": "Location", "id": bed_id(unit, n), "status": status, "name": f"Seng {n}",
                "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": "bd", "display": "Bed"}]},
                "managingOrganization": managed,
                "partOf": {"reference": f"Location/{unit_location_id(unit)}"},
            })  # fmt: skip
            if n <= count:
                made.append(bed_id(unit, n))
            n += 1
    return made


def _beds(con: Engine | Connection, unit: str) -> list[dict[str, Any]]:
    found = search(
        con, SYSTEM, "Location",
        [("partof", f"Location/{unit_location_id(unit)}"), ("status", "active"), ("_count", str(MAX_BEDS)),
         ("_sort", "_id")],
    )  # fmt: skip
    return [v.load(m) for m in found.matches]


def _open_stays(con: Engine | Connection, unit: str) -> list[dict[str, Any]]:
    """The unit's open stays, read as the platform: which beds are taken is no one citizen's record."""
    found = search(
        con, SYSTEM, "Encounter",
        [("service-provider", f"Organization/{unit}"), ("status", ",".join(OPEN)),
         ("type", f"{CONTACT_TYPE}|acute-bed"), ("_count", "1000")],
    )  # fmt: skip
    return [v.load(m) for m in found.matches]


def _bed_of(stay: dict[str, Any]) -> str | None:
    for item in stay.get("location") or []:
        ref = v.ref_id(item.get("location"), "Location")
        if ref and item.get("status") in (None, "active"):
            return ref
    return None


@dataclass
class Occupancy:
    unit: str
    name: str
    beds: list[dict[str, Any]]  # {id, name, occupied: bool}
    open_stays: int  # every open stay at the unit, also those without a bed in Nær (from elsewhere)

    @property
    def occupied(self) -> int:
        return sum(1 for b in self.beds if b["occupied"])

    @property
    def free(self) -> int:
        return len(self.beds) - self.occupied


def occupancy(db: Engine | Connection, unit: str) -> Occupancy:
    """The unit's beds now, each free or taken (no citizen named: this is what anyone planning a bed
    may know)."""
    unit = v.ident(unit, "unit")
    org = _acute_unit(db, unit)
    stays = _open_stays(db, unit)
    all_beds = _beds(db, unit)
    free = {b["id"] for b in _free(all_beds, stays)}
    beds = [
        {"id": b["id"], "name": b.get("name", b["id"]), "occupied": b["id"] not in free} for b in all_beds
    ]
    return Occupancy(unit, str(org.get("name", unit)), beds, len(stays))


def _acute_unit(db: Engine | Connection, unit: str) -> dict[str, Any]:
    """The acute unit ``unit`` (an Organization of kind municipal-acutebeds), or a clear refusal."""
    org = v.directory(db, "Organization", unit)
    if org is None or org.get("active") is False:
        raise Unprocessable(f"there is no acute unit Organization/{unit}", where="unit")
    if "municipal-acutebeds" not in v.codes(org.get("type"), ORG_KIND):
        name = org.get("name", unit)
        raise Unprocessable(f"Organization/{unit} ({name}) is not an acute-bed unit", where="unit")
    return org


def _free(beds: list[dict[str, Any]], stays: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The beds no open stay holds. A stay that names no bed of the unit (recorded before Nær had the
    unit's beds, or by another system) still fills one: it takes the last free beds."""
    taken = {_bed_of(s) for s in stays}
    ids = {b["id"] for b in beds}
    unplaced = sum(1 for s in stays if _bed_of(s) not in ids)
    free = [b for b in beds if b["id"] not in taken]
    return free[: max(0, len(free) - unplaced)]


def admit(
    db: Engine,
    context: RequestContext,
    patient_id: str,
    unit: str,
    physician_role: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Admit the citizen to a free bed of ``unit`` with ``physician_role`` as the responsible physician;
    a full unit, an unknown physician or a citizen already in an acute bed there is refused."""
    access = v.require_person(context)
    if access.principal.role not in NURSES:
        raise Forbidden("admission to an acute bed is done by the unit's nurses or a physician")
    patient_id = v.ident(patient_id, "patient")
    unit = v.ident(unit, "unit")
    note = v.text(reason, "reason", required=False)
    store.read(db, access, "Patient", patient_id)  # 404 for a citizen the asker may not know
    physician = _physician(db, v.ident(physician_role, "physician"))
    org = _acute_unit(db, unit)
    now = clock.now()
    with db.begin() as con:
        _lock_unit(con, unit)
        beds = _beds(con, unit)
        if not beds:
            raise Unprocessable(f"{org.get('name', unit)} has no beds registered in Nær", where="unit")
        stays = _open_stays(con, unit)
        if any(v.ref_id(s.get("subject"), "Patient") == patient_id for s in stays):
            raise Conflict(f"the citizen is already in an acute bed at {org.get('name', unit)}")
        free = _free(beds, stays)
        if not free:
            raise Conflict(
                f"{org.get('name', unit)} is full: all {len(beds)} beds are taken; "
                "ask the neighbouring units or the hospital"
            )
        bed = free[0]
        name = _display(con, physician)
        encounter: dict[str, Any] = {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"system": ACT_CODE, "code": "IMP"},
            "type": [{"coding": [{"system": CONTACT_TYPE, "code": "acute-bed", "display": "Akutplads"}]}],
            "subject": {"reference": f"Patient/{patient_id}"},
            "participant": [{
                "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND", "display": "attender"}]}],
                "individual": {"reference": f"PractitionerRole/{physician['id']}", "display": name},
            }],
            "period": {"start": v.instant(now)},
            "location": [{"location": {"reference": f"Location/{bed['id']}", "display": bed.get("name")},
                          "status": "active"}],
            "serviceProvider": {"reference": f"Organization/{unit}", "display": str(org.get("name", unit))},
        }  # fmt: skip
        if note:
            encounter["reasonCode"] = [{"text": note}]
        return v.load(store.create(con, access, "Encounter", encounter))


def _physician(db: Engine | Connection, role_id: str) -> dict[str, Any]:
    """The responsible physician's PractitionerRole: active, and at a hospital or a GP clinic (the
    sectors whose physicians hold medical responsibility; a municipal nurse's role is refused)."""
    role = v.directory(db, "PractitionerRole", role_id)
    org_id = v.ref_id((role or {}).get("organization"), "Organization")
    org = v.directory(db, "Organization", org_id) if org_id else None
    if role is None or role.get("active") is False or org is None or v.sector(org) not in PHYSICIAN_SECTORS:
        raise Unprocessable(
            f"there is no active physician with PractitionerRole/{role_id}", where="physician"
        )
    return role


def _display(con: Connection, role: dict[str, Any]) -> str:
    practitioner = v.directory(con, "Practitioner", v.ref_id(role.get("practitioner"), "Practitioner") or "")
    name = ((practitioner or {}).get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or str(role.get("id"))


def _lock_unit(con: Connection, unit: str) -> None:
    """Hold the unit's Location row until the transaction ends, so admissions to one unit go one at a time:
    an UPDATE that changes nothing, as the transaction's first statement, locks the row on PostgreSQL and
    takes SQLite's write lock before anything is read (a SELECT would lock neither)."""
    con.execute(
        update(resources)
        .where(resources.c.resource_type == "Location", resources.c.id == unit_location_id(unit))
        .values(version_id=resources.c.version_id)
    )


def discharge(
    db: Engine, context: RequestContext, encounter_id: str, disposition: str, if_match: int | None = None
) -> dict[str, Any]:
    """End an acute-bed stay now, with where the citizen went."""
    access = v.require_person(context)
    if disposition not in DISPOSITIONS:
        raise Invalid(f"disposition must be one of {', '.join(DISPOSITIONS)}", where="disposition")
    with db.begin() as con:
        found = store.read(con, access, "Encounter", v.ident(encounter_id, "stay"))
        stay = v.load(found)
        if v.codes(stay.get("type"), CONTACT_TYPE) != ["acute-bed"]:
            raise Invalid(f"Encounter/{encounter_id} is not an acute-bed stay", where="stay")
        if stay.get("status") not in OPEN:
            raise Conflict(f"the stay Encounter/{encounter_id} has ended already")
        if if_match is not None and if_match != found.version_id:
            raise Conflict(
                f"Encounter/{encounter_id} changed meanwhile (version {found.version_id}): read it again"
            )
        stay.pop("meta", None)
        stay["status"] = "finished"
        stay["period"] = {**(stay.get("period") or {}), "end": v.instant(clock.now())}
        stay["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": DISCHARGE_DISPOSITION, "code": disposition}]}
        }
        stay["location"] = [{**item, "status": "completed"} for item in stay.get("location") or []]
        return v.load(store.update(con, access, "Encounter", encounter_id, stay, if_match=found.version_id))


def occupancy_by_day(db: Engine, unit: str, first: date, last: date) -> list[dict[str, Any]]:
    """For each day from ``first`` to ``last``: how many of the unit's stays were open at noon (Danish
    time) — the occupancy over time, from every stay at the unit (also those before Nær had its beds)."""
    if not (1900 <= first.year <= 2100 and 1900 <= last.year <= 2100):
        raise Invalid("the period lies from 1900 to 2100", where="start")
    if last < first or (last - first).days > MAX_DAYS:
        raise Invalid(f"the period is 1 to {MAX_DAYS} days, start before end", where="start")
    unit = v.ident(unit, "unit")
    start = datetime.combine(first, time(0), DANISH_TIME)
    finish = datetime.combine(last, time(23, 59, 59), DANISH_TIME)
    criteria = [
        ("service-provider", f"Organization/{unit}"), ("type", f"{CONTACT_TYPE}|acute-bed"),
        ("date", f"ge{v.instant(start)}"), ("date", f"le{v.instant(finish)}"), ("_sort", "_id"),
    ]  # fmt: skip
    spans = []
    offset = 0
    while True:  # every stay of the period, a page at a time
        found = search(db, SYSTEM, "Encounter", [*criteria, ("_count", "1000"), ("_offset", str(offset))])
        for m in found.matches:
            period = v.load(m).get("period") or {}
            try:
                begin = v.aware(period["start"])
                end = v.aware(period["end"]) if period.get("end") else None
            except (KeyError, TypeError, ValueError):
                continue
            spans.append((begin, end))
        if len(found.matches) < 1000:
            break
        offset += 1000
    days = []
    day = first
    while day <= last:
        noon = datetime.combine(day, time(12), DANISH_TIME)
        occupied = sum(1 for b, e in spans if b <= noon and (e is None or e > noon))
        days.append({"day": day.isoformat(), "occupied": occupied})
        day += timedelta(days=1)
    return days
