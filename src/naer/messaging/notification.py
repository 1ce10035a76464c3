"""HospitalNotification (advis om sygehusophold): built from a stay, recognised from a message.

Which class, status and activity each code is, and when a hospital may send it, is data
(``hospital_notifications.yaml``); this module builds the message to MedCom's profiles and refuses a
notification the guide does not allow, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from naer.messaging import parts
from naer.messaging.parts import Citizen, Party

GUIDE = "http://medcomfhir.dk/ig/hospitalnotification/StructureDefinition"
MESSAGE = f"{GUIDE}/medcom-hospitalNotification-message"
HEADER = f"{GUIDE}/medcom-hospitalNotification-messageHeader"
ENCOUNTER = f"{GUIDE}/medcom-hospitalNotification-encounter"
LEAVE = f"{GUIDE}/medcom-hospitalnotifiation-leave-period-extension"
PROVENANCE = f"{parts.MESSAGING}/medcom-messaging-provenance"
EVENT = "hospital-notification-message"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SOURCE = Path(__file__).with_name("hospital_notifications.yaml")


class RuleBroken(ValueError):
    """A notification the guide does not allow; the message says which rule."""


@dataclass(frozen=True)
class Kind:
    code: str
    classes: tuple[str, ...]
    status: str
    activities: dict[str, str]  # class -> Provenance activity
    states: dict[str, str]  # class -> the stay's state after it
    after: tuple[str, ...]
    deceased: bool
    corrects: str | None
    cancels: str | None
    da: str
    en: str


@dataclass(frozen=True)
class Step:
    """An earlier message about the same stay, as the Provenance of later ones names it."""

    header: str
    activity: str
    at: datetime
    agent: Party


@dataclass(frozen=True)
class Stay:
    """A hospital stay as the notifications describe it. ``episode`` is its episode-of-care identifier
    (forløbsid), the same in every notification about the stay."""

    episode: str
    klass: str  # IMP or EMER
    start: datetime
    end: datetime | None = None
    leave_start: datetime | None = None
    leave_end: datetime | None = None
    history: tuple[Step, ...] = field(default_factory=tuple)
    state: str = "none"


@cache
def kinds() -> dict[str, Kind]:
    data = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    found = {}
    for code, raw in data["codes"].items():
        classes = tuple(raw["class"]) if isinstance(raw["class"], list) else (raw["class"],)
        activity = raw["activity"]
        state = raw["state"]
        found[code] = Kind(
            code=code,
            classes=classes,
            status=raw["status"],
            activities=dict(activity) if isinstance(activity, dict) else {each: activity for each in classes},
            states=dict(state) if isinstance(state, dict) else {each: state for each in classes},
            after=tuple(raw["after"]),
            deceased=bool(raw.get("deceased", False)),
            corrects=raw.get("corrects"),
            cancels=raw.get("cancels"),
            da=raw["da"],
            en=raw["en"],
        )
    return found


@cache
def cancel_reasons() -> tuple[str, ...]:
    return tuple(yaml.safe_load(SOURCE.read_text(encoding="utf-8"))["cancel_reasons"])


def check(code: str, stay: Stay, reason: str | None = None) -> Kind:
    """The kind of notification ``code`` is, if the hospital may send it now; RuleBroken if not."""
    kind = kinds().get(code)
    if kind is None:
        known = ", ".join(kinds())
        raise RuleBroken(f"{code!r} is not a HospitalNotification (one of {known}); a transfer sends none")
    if stay.klass not in kind.classes:
        hint = " (a change from acute ambulant to admitted is a new STIN)" if stay.klass == "EMER" else ""
        raise RuleBroken(f"{code} is not sent for a stay of class {stay.klass}{hint}")
    if stay.state not in kind.after:
        raise RuleBroken(
            f"{code} cannot follow the stay's state {stay.state!r}; it is sent when the stay is "
            + " or ".join(kind.after)
        )
    if kind.cancels is not None and reason not in cancel_reasons():
        raise RuleBroken(
            f"{code} cancels a notification sent in error and needs the reason: "
            + " or ".join(cancel_reasons())
            + " (any other change is a correction)"
        )
    return kind


def build(
    code: str,
    sender: Party,
    receiver: Party,
    citizen: Citizen,
    stay: Stay,
    at: datetime,
    reason: str | None = None,
    header_id: str | None = None,
) -> dict[str, Any]:
    """The HospitalNotification message ``code`` about ``stay``, sent by the hospital unit ``sender`` to
    the citizen's municipality ``receiver`` at ``at``."""
    kind = check(code, stay, reason)
    if kind.deceased:
        citizen = replace(citizen, deceased=True)
    patient = parts.patient(citizen)
    encounter = _encounter(kind, stay, patient, sender)
    head = parts.header(HEADER, EVENT, sender, receiver, encounter, header_id=header_id)
    steps = [
        parts.provenance(PROVENANCE, step.header, step.activity, step.agent, step.at) for step in stay.history
    ]
    previous = stay.history[-1].header if stay.history else None
    own = parts.provenance(
        PROVENANCE,
        head["id"],
        kind.activities[stay.klass],
        sender,
        at,
        previous=previous,
        role="removal" if kind.cancels else "revision",
    )
    resources = [
        head,
        patient,
        encounter,
        parts.organization(sender),
        parts.organization(receiver),
        *steps,
        own,
    ]
    return parts.bundle(MESSAGE, resources, at)


def _encounter(kind: Kind, stay: Stay, patient: dict[str, Any], sender: Party) -> dict[str, Any]:
    period: dict[str, str] = {"start": parts.instant(stay.start)}
    if kind.status == "finished":
        if stay.end is None:
            raise RuleBroken(f"{kind.code} ends the stay and needs its end time")
        period["end"] = parts.instant(stay.end)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": parts.new_id(),
        "meta": {"profile": [ENCOUNTER]},
        "text": parts.narrative(f"{kind.code}: {kind.en}", f"{period['start']} - {period.get('end', '')}"),
        "status": kind.status,
        "class": {"system": ACT_CODE, "code": stay.klass},
        "subject": parts.ref(patient),
        "episodeOfCare": [{"identifier": {"system": sender.endpoint, "value": stay.episode}}],
        "period": period,
        "serviceProvider": {"reference": f"Organization/{sender.id}"},
    }
    if stay.leave_start is not None and kind.code.removeprefix("RE_").removeprefix("AN_") in ("STOR", "SLOR"):
        leave: dict[str, str] = {"start": parts.instant(stay.leave_start)}
        if stay.leave_end is not None and kind.status != "onleave":
            leave["end"] = parts.instant(stay.leave_end)
        resource["extension"] = [{"url": LEAVE, "valuePeriod": leave}]
    elif kind.status == "onleave":
        raise RuleBroken(f"{kind.code} puts the citizen on leave and needs the leave's start")
    return resource


@dataclass(frozen=True)
class Notice:
    """What a received HospitalNotification says."""

    code: str
    klass: str
    status: str
    episode: str
    start: str | None
    end: str | None
    event_at: str  # when the hospital recorded this step (the own Provenance's time)
    deceased: bool


def read(message: dict[str, Any]) -> Notice:
    """Recognise a (validated) HospitalNotification. A death is recognised by the citizen's deceased flag
    on a finished stay, whatever the activity (MedCom's own MORS examples carry an admission's). AN_MORS
    reads as AN_SLHJ: the two are the same message (a cancelled end of stay), and leave the same state."""
    encounter = parts.first(message, "Encounter") or {}
    patient = parts.first(message, "Patient") or {}
    own = parts.current_provenance(message)
    activity = parts.activity_of(own)
    klass = str((encounter.get("class") or {}).get("code", ""))
    status = str(encounter.get("status", ""))
    deceased = patient.get("deceasedBoolean") is True or isinstance(patient.get("deceasedDateTime"), str)
    code = next(
        (
            kind.code
            for kind in kinds().values()
            if klass in kind.classes
            and kind.activities.get(klass) == activity
            and kind.status == status
            and kind.deceased == deceased
        ),
        None,
    )
    if code is None and deceased and status == "finished":
        code = "MORS"
    if code is None:
        raise RuleBroken(
            f"activity {activity!r} with an Encounter {klass} {status!r} is no HospitalNotification"
        )
    episodes = [
        (each.get("identifier") or {}).get("value")
        for each in encounter.get("episodeOfCare") or []
        if isinstance(each, dict)
    ]
    period = encounter.get("period") or {}
    return Notice(
        code=code,
        klass=klass,
        status=status,
        episode=str(next((e for e in episodes if isinstance(e, str)), "")),
        start=period.get("start"),
        end=period.get("end"),
        event_at=str((own or {}).get("occurredDateTime") or message.get("timestamp") or ""),
        deceased=deceased,
    )


def state_after(kind: Kind, klass: str) -> str:
    return kind.states[klass]
