"""HospitalNotifications from the store's events: a hospital stay's change, told to the municipal units
that care for the citizen at home, in the same transaction as the change (the transactional outbox).

A write of an Encounter of class IMP (admitted) or EMER (acute ambulant) whose serviceProvider is a
hospital unit (sector ``region``, with a SOR code) is compared with the version before it:

- a new stay in progress: STIN (admitted) or STAA (acute ambulant); acute ambulant becoming admitted is a
  new STIN (the guide's rule);
- in progress to on leave: STOR; back from leave: SLOR;
- finished: SLHJ, or MORS when the citizen has died;
- the same state with another start or end time: the correction (RE_) of the last notification.

It is told to each municipal unit with a current home-care or acute-bed relation with the citizen (the
access policy's relations, kept as rows). A change the guide does not allow for what the unit was told
before (say, a leave ending that the unit never heard begin) sends nothing and is logged. A cancellation
is never derived: it needs a person to say why (a wrong CPR number or stay type).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.conditions import micros
from naer.fhir.systems import SECTOR, SECTOR_EXTENSION
from naer.messaging import directory, notification, outbox, parts
from naer.messaging.notification import RuleBroken, Stay, Step
from naer.messaging.tables import message
from naer.store import events
from naer.store.tables import care_relation, history

log = logging.getLogger(__name__)
CLASSES = ("IMP", "EMER")
CARERS = ("home-care", "acute-bed")
OPEN = ("in-progress", "onleave", "arrived", "triaged")


def install() -> None:
    """Listen to the store's writes (idempotent): every process that serves users calls it."""
    events.listen("messaging.hospital-notification", written)


def written(con: Connection, version: Any) -> None:
    if version.resource_type != "Encounter" or version.content is None:
        return
    now = orjson.loads(version.content)
    klass = (now.get("class") or {}).get("code")
    if klass not in CLASSES:
        return
    hospital = _hospital(con, now)
    if hospital is None:
        return
    before = _previous(con, version)
    code = _code(before, now)
    if code is None:
        return
    patient = _patient_id(now)
    if patient is None:
        return
    receivers = _carers(con, patient)
    if not receivers:
        return
    person = directory.patient_content(con, patient) or {}
    try:
        citizen = parts.citizen_of(
            person, deceased=_deceased(person) and code in ("SLHJ", "RE_SLHJ"), cpr_only=True
        )
    except parts.NotSendable as exc:
        log.warning("no HospitalNotification for Encounter/%s: %s", version.id, exc)
        return
    for unit in receivers:
        _notify(con, code, hospital, unit, citizen, now, patient, version.id)


def _hospital(con: Connection, encounter: dict[str, Any]) -> directory.Unit | None:
    ref = (encounter.get("serviceProvider") or {}).get("reference", "")
    if not isinstance(ref, str) or not ref.startswith("Organization/"):
        return None
    org = directory._content(con, "Organization", ref.split("/", 1)[1])
    if org is None:
        return None
    sectors = [
        (ext.get("valueCoding") or {}).get("code")
        for ext in org.get("extension") or []
        if isinstance(ext, dict) and ext.get("url") == SECTOR_EXTENSION
        and (ext.get("valueCoding") or {}).get("system") == SECTOR
    ]  # fmt: skip
    if "region" not in sectors:
        return None
    return directory.unit_by_id(con, ref.split("/", 1)[1])


def _previous(con: Connection, version: Any) -> dict[str, Any] | None:
    if version.version_id <= 1:
        return None
    row = con.execute(
        select(history.c.content).where(
            and_(
                history.c.resource_type == "Encounter",
                history.c.id == version.id,
                history.c.version_id == version.version_id - 1,
            )
        )
    ).first()
    if row is None or row[0] is None:
        return None
    found = orjson.loads(row[0])
    return found if isinstance(found, dict) else None


def _code(before: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """The notification a change of a stay is, or None when it is none."""
    status, klass = now.get("status"), (now.get("class") or {}).get("code")
    old_status = before.get("status") if before else None
    old_class = (before.get("class") or {}).get("code") if before else None
    was_open = old_status in OPEN and old_class in CLASSES
    if status == "finished":
        if old_status == "finished":
            return "RE_SLHJ" if _times(before) != _times(now) else None
        return "SLHJ" if was_open else None  # MORS is told apart by the citizen (_citizen)
    if status == "onleave":
        if old_status == "onleave":
            return "RE_STOR" if _times(before) != _times(now) else None
        return "STOR" if was_open else None
    if status in ("in-progress", "arrived", "triaged"):
        if not was_open:
            return "STIN" if klass == "IMP" else "STAA"
        if old_status == "onleave":
            return "SLOR"
        if old_class == "EMER" and klass == "IMP":
            return "STIN"  # from acute ambulant to admitted: a new STIN
        if _times(before) != _times(now):
            return "RE_STIN" if klass == "IMP" else "RE_STAA"
    return None


def _times(encounter: dict[str, Any] | None) -> tuple[Any, Any]:
    period = (encounter or {}).get("period") or {}
    return period.get("start"), period.get("end")


def _patient_id(encounter: dict[str, Any]) -> str | None:
    ref = (encounter.get("subject") or {}).get("reference", "")
    return ref.split("/", 1)[1] if isinstance(ref, str) and ref.startswith("Patient/") else None


def _carers(con: Connection, patient: str) -> list[directory.Unit]:
    """The municipal units in home care or acute beds with the citizen now, with a SOR code."""
    moment = micros(clock.now())
    rows = con.execute(
        select(care_relation.c.party_id)
        .where(
            care_relation.c.patient_id == patient,
            care_relation.c.party_type == "Organization",
            care_relation.c.relation.in_(CARERS),
            care_relation.c.low <= moment,
            care_relation.c.high >= moment,
        )
        .distinct()
    ).all()
    found = [directory.unit_by_id(con, str(row[0])) for row in rows]
    return [unit for unit in found if unit is not None]


def _deceased(person: dict[str, Any]) -> bool:
    return person.get("deceasedBoolean") is True or isinstance(person.get("deceasedDateTime"), str)


def _notify(
    con: Connection,
    code: str,
    hospital: directory.Unit,
    unit: directory.Unit,
    citizen: parts.Citizen,
    encounter: dict[str, Any],
    patient: str,
    rid: str,
) -> None:
    if citizen.deceased:
        code = "RE_MORS" if code == "RE_SLHJ" else "MORS"
    klass = (encounter.get("class") or {}).get("code")
    history_, state = _told(con, rid, unit.party.sor)
    period = encounter.get("period") or {}
    leave = _leave(encounter)
    if leave[0] is None and code in ("SLOR", "RE_SLOR", "RE_STOR"):  # when the unit was told it began
        told = [step.at for step in history_ if step.activity == "start-leave-inpatient"]
        leave = (told[-1] if told else None, leave[1])
    if code in ("SLOR", "RE_SLOR") and leave[1] is None:
        leave = (leave[0], clock.now())
    try:
        stay = Stay(
            episode=rid,
            klass=str(klass),
            start=_when(period.get("start")) or clock.now(),
            end=_when(period.get("end")),
            leave_start=leave[0] or (clock.now() if code == "STOR" else None),
            leave_end=leave[1],
            history=history_,
            state=state,
        )
        found = notification.build(code, hospital.party, unit.party, citizen, stay, clock.now())
    except RuleBroken as exc:
        log.info("no %s for Encounter/%s to %s: %s", code, rid, unit.id, exc)
        return
    outbox.put(con, found, "hospital-notification", code, hospital.id, patient, episode=rid)


def _told(con: Connection, episode: str, receiver: str) -> tuple[tuple[Step, ...], str]:
    """What this unit was told of the stay so far (the Provenance history of the next message) and the
    stay's state by it."""
    rows = con.execute(
        select(message.c.header_id, message.c.code, message.c.created, message.c.body)
        .where(
            message.c.direction == "out",
            message.c.kind == "hospital-notification",
            message.c.episode == episode,
            message.c.receiver_sor == receiver,
        )
        .order_by(message.c.created)
    ).all()
    steps = []
    state = "none"
    for row in rows:
        found = orjson.loads(row.body)
        own = parts.current_provenance(found)
        sender = parts.party_of(
            parts.resolve(found, (parts.first(found, "MessageHeader") or {}).get("sender"))
        )
        activity = parts.activity_of(own)
        if sender is None or activity is None:
            continue
        at = _when(str((own or {}).get("occurredDateTime", ""))) or row.created
        steps.append(Step(row.header_id, activity, at, sender))
        klass = str(((parts.first(found, "Encounter") or {}).get("class") or {}).get("code", "IMP"))
        state = notification.kinds()[row.code].states.get(klass, state)
    return tuple(steps), state


def _leave(encounter: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The latest leave's start and end: from the Encounter's status history (R4's own record of when
    it was on leave), else from a MedCom leave-period extension."""
    for item in reversed(encounter.get("statusHistory") or []):
        if (
            isinstance(item, dict)
            and item.get("status") == "onleave"
            and isinstance(item.get("period"), dict)
        ):
            return _when(item["period"].get("start")), _when(item["period"].get("end"))
    for ext in encounter.get("extension") or []:
        if isinstance(ext, dict) and isinstance(ext.get("valuePeriod"), dict):
            period = ext["valuePeriod"]
            return _when(period.get("start")), _when(period.get("end"))
    return None, None


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=clock.now().tzinfo)
