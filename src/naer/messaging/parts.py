"""The pieces every MedCom message is made of: the parties, the citizen, the MessageHeader, the
Provenance of each step and the message Bundle. Built to MedCom's profiles (the messaging guide and
MedCom core); ``validate.py`` checks every message built from them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from naer.fhir.systems import CPR, NAER, SOR, SYNTHETIC_TAG

GLN = "https://www.gs1.org/gln"
MESSAGING = "http://medcomfhir.dk/ig/messaging/StructureDefinition"
CORE = "http://medcomfhir.dk/ig/core/StructureDefinition"
TERMINOLOGY = "http://medcomfhir.dk/ig/terminology/CodeSystem"
EVENTS = f"{TERMINOLOGY}/medcom-messaging-eventCodes"
ACTIVITIES = f"{TERMINOLOGY}/medcom-messaging-activityCodes"
DESTINATION_USE = f"{TERMINOLOGY}/medcom-messaging-destinationUse"
XHTML = "http://www.w3.org/1999/xhtml"
SOR_ENDPOINT = "https://sor2.sum.dsdn.dk/#id="  # where MedCom's examples point a SOR unit's endpoint


@dataclass(frozen=True)
class Party:
    """An organisation as messages name it: its SOR code, its GLN (the VANS address) and its name."""

    sor: str
    gln: str
    name: str

    @property
    def id(self) -> str:
        return f"sor-{self.sor}"

    @property
    def endpoint(self) -> str:
        return SOR_ENDPOINT + self.sor


@dataclass(frozen=True)
class Citizen:
    cpr: str  # the CPR number, or the replacement CPR of ``system``
    family: str
    given: tuple[str, ...] = ()
    deceased: bool = False
    test: bool = False  # synthetic test data (tagged HTEST in the message, as in the store)
    system: str = CPR  # CPR, or a replacement CPR's system (X-eCPR, a region's D-eCPR)

    @property
    def id(self) -> str:
        return "cpr-" + str(uuid.uuid5(uuid.NAMESPACE_OID, self.system + "|" + self.cpr))


class NotSendable(ValueError):
    """What Nær holds cannot make a valid message (the reason says what); nothing is sent."""


# MedCom's ``cpr`` invariant (medcom-core-patient): ten digits, the first six a day and month
CPR_FORMAT = re.compile(
    r"((((0[1-9]|1[0-9]|2[0-9]|3[0-1])(01|03|05|07|08|10|12))|((0[1-9]|1[0-9]|2[0-9]|30)(04|06|09|11))"
    r"|((0[1-9]|1[0-9]|2[0-9])(02)))[0-9]{6})"
)
REPLACEMENT_FORMAT = re.compile(r"[0-9A-Z]{10}")  # X-eCPR and D-eCPR: ten digits and capital letters
SOR_FORMAT = re.compile(r"[0-9]{1,18}")  # a SOR code: digits (SOR ids are at most 18 long)
GLN_FORMAT = re.compile(r"[0-9]{13}")


def is_sor(value: Any) -> bool:
    return isinstance(value, str) and SOR_FORMAT.fullmatch(value) is not None


def is_gln(value: Any) -> bool:
    return isinstance(value, str) and GLN_FORMAT.fullmatch(value) is not None


def allowed(ch: str) -> bool:
    """A character a message's text may hold: FHIR strings take no control characters but tab, CR and LF,
    and its narratives are XML, which takes neither U+FFFE, U+FFFF nor a lone surrogate."""
    return (ch >= " " or ch in "\t\r\n") and ch not in "\ufffe\uffff" and not "\ud800" <= ch <= "\udfff"


def plain(value: str) -> str:
    """Text as a message may carry it in a name: no character a message may not hold, whitespace
    collapsed."""
    return " ".join("".join(ch if allowed(ch) else " " for ch in value).split())


def _cpr_form(number: str, test: bool) -> bool:
    """MedCom's CPR form; synthetic test data (HTEST) has its day moved up by 60, as Danish test CPR
    numbers do (the validator's test_data.yaml warns of it rather than refusing)."""
    if CPR_FORMAT.fullmatch(number) is not None:
        return True
    if test and len(number) == 10 and number.isascii() and number.isdigit() and 61 <= int(number[:2]) <= 91:
        return CPR_FORMAT.fullmatch(f"{int(number[:2]) - 60:02d}{number[2:]}") is not None
    return False


def citizen_of(person: dict[str, Any], deceased: bool = False, cpr_only: bool = False) -> Citizen:
    """The citizen of a stored Patient as a message names them; NotSendable when they cannot be named so
    (no CPR number or replacement, or one of the wrong form; ``cpr_only``: a message that takes only a
    CPR number, as the HospitalNotification's medcom-hospitalNotification-4 says)."""
    identity = identity_of(person)
    if identity is None:
        raise NotSendable("the citizen has no CPR number (or replacement CPR); MedCom messages need one")
    system, number = identity
    if cpr_only and system != CPR:
        raise NotSendable("the citizen has only a replacement CPR, and this message takes a CPR number")
    if system == CPR and not _cpr_form(number, is_test_data(person)):
        raise NotSendable("the citizen's CPR number is not ten digits starting with a day and month")
    if system != CPR and REPLACEMENT_FORMAT.fullmatch(number) is None:
        raise NotSendable("the citizen's replacement CPR is not ten digits and capital letters")
    names = person.get("name")
    name = names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}
    family = plain(name["family"]) if isinstance(name.get("family"), str) else ""
    given = tuple(g for g in (plain(x) for x in name.get("given") or [] if isinstance(x, str)) if g)
    return Citizen(number, family or "-", given, deceased=deceased, test=is_test_data(person), system=system)


def new_id() -> str:
    return str(uuid.uuid4())


def instant(moment: datetime) -> str:
    """A FHIR dateTime with seconds and the offset (MedCom's messages always carry both)."""
    if moment.tzinfo is None:
        raise ValueError("a message time needs a time zone")
    return moment.isoformat(timespec="seconds")


def synthetic_gln(sor: str) -> str:
    """A GLN for an organisation whose directory entry has none (the synthetic population's): 579 (GS1
    Denmark) and nine digits of the SOR code, with the GS1 check digit. Real organisations carry their
    own GLN in the directory, and that one is used."""
    digits = "".join(ch for ch in sor if "0" <= ch <= "9")  # (a SOR code is digits: is_sor)
    body = "579" + digits[-9:].rjust(9, "0")
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(body))
    return body + str((10 - total % 10) % 10)


def narrative(*lines: str) -> dict[str, str]:
    """MedCom asks for a narrative in every resource; the text is escaped, never markup from data."""
    body = "".join(f"<p>{escape(line)}</p>" for line in lines if line)
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body or "<p>-</p>"}</div>'}


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def organization(party: Party) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": party.id,
        "meta": {"profile": [f"{MESSAGING}/medcom-messaging-organization"]},
        "text": narrative(party.name, f"SOR {party.sor}", f"GLN {party.gln}" if party.gln else ""),
        "identifier": [
            *([{"system": GLN, "value": party.gln}] if party.gln else []),
            {"system": SOR, "value": party.sor},
        ],
        "name": party.name,
    }


def patient(citizen: Citizen) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official", "family": citizen.family}
    if citizen.given:
        name["given"] = list(citizen.given)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": citizen.id,
        "meta": {"profile": [f"{CORE}/medcom-core-patient"]},
        "text": narrative(" ".join([*citizen.given, citizen.family])),
        "identifier": [{"system": citizen.system, "value": citizen.cpr}],
        "name": [name],
    }
    if citizen.deceased:
        resource["deceasedBoolean"] = True
    if citizen.test:
        resource["meta"]["tag"] = [dict(SYNTHETIC_TAG)]
    return resource


def header(
    profile: str,
    event: str,
    sender: Party,
    receiver: Party,
    focus: dict[str, Any] | None,
    header_id: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": header_id or new_id(),
        "meta": {"profile": [profile]},
        "text": narrative(f"{event}: {sender.name} → {receiver.name}"),
        "eventCoding": {"system": EVENTS, "code": event},
        "destination": [
            {
                "extension": [
                    {
                        "url": f"{MESSAGING}/medcom-messaging-destinationUseExtension",
                        "valueCoding": {"system": DESTINATION_USE, "code": "primary"},
                    }
                ],
                "endpoint": receiver.endpoint,
                "receiver": {"reference": f"Organization/{receiver.id}"},
            }
        ],
        "sender": {"reference": f"Organization/{sender.id}"},
        "source": {"endpoint": sender.endpoint},
        **more,
    }
    if focus is not None:
        resource["focus"] = [ref(focus)]
    return resource


def provenance(
    profile: str,
    header_id: str,
    activity: str,
    agent: Party,
    at: datetime,
    previous: str | None = None,
    role: str = "revision",
    provenance_id: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """One step of the message's history: this message (``header_id``) did ``activity``; ``previous``
    names the earlier message it revises, answers or cancels."""
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id or new_id(),
        "meta": {"profile": [profile]},
        "text": narrative(f"{activity} {instant(at)}"),
        "target": [{"reference": f"MessageHeader/{header_id}"}],
        "occurredDateTime": instant(at),
        "recorded": instant(at),
        "activity": {"coding": [{"system": ACTIVITIES, "code": activity}]},
        "agent": [{"who": {"reference": f"Organization/{agent.id}"}}],
        **more,
    }
    if previous is not None:
        resource.setdefault("entity", []).insert(
            0, {"role": role, "what": {"reference": f"MessageHeader/{previous}"}}
        )
    return resource


def bundle(
    profile: str, resources: list[dict[str, Any]], at: datetime, bundle_id: str | None = None
) -> dict[str, Any]:
    """The message: the MessageHeader first, every resource once (later duplicates by id dropped)."""
    seen: set[tuple[str, str]] = set()
    entries = []
    for resource in resources:
        if not isinstance(resource.get("id"), str):  # (a copied resource a sender left without one)
            resource = {**resource, "id": new_id()}
        key = (resource["resourceType"], resource["id"])
        if key in seen:
            continue
        seen.add(key)
        entries.append({"fullUrl": f"{NAER}/{key[0]}/{key[1]}", "resource": resource})
    return {
        "resourceType": "Bundle",
        "id": bundle_id or new_id(),
        "meta": {"profile": [profile]},
        "type": "message",
        "timestamp": instant(at),
        "entry": entries,
    }


# -- reading a message ------------------------------------------------------------------------------------
# A message from outside is read before it is known to be valid: every accessor below takes any JSON and
# answers None (or nothing) where the shape is not what FHIR says, never an exception.


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def entries(message: Any) -> list[dict[str, Any]]:
    return [
        entry["resource"]
        for entry in items(obj(message).get("entry"))
        if isinstance(obj(entry).get("resource"), dict)
    ]


def first(message: Any, kind: str) -> dict[str, Any] | None:
    return next((each for each in entries(message) if each.get("resourceType") == kind), None)


def header_of(message: Any) -> dict[str, Any] | None:
    """The message's MessageHeader: its first entry, as FHIR requires (bdl-12)."""
    found = entries(message)
    return found[0] if found and found[0].get("resourceType") == "MessageHeader" else None


def resolve(message: Any, reference: Any) -> dict[str, Any] | None:
    """The resource a reference inside the message names ('Type/id', or a full URL ending so)."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str):
        return None
    kind, _, ident = reference.rstrip("/").rpartition("/")
    kind = kind.rpartition("/")[2]
    for entry in items(obj(message).get("entry")):
        resource = obj(entry).get("resource")
        if not isinstance(resource, dict):
            continue
        if obj(entry).get("fullUrl") == reference or (
            resource.get("resourceType") == kind and resource.get("id") == ident
        ):
            return resource
    return None


def party_of(organization: Any) -> Party | None:
    """The Party an Organization of a message stands for (None without a SOR code)."""
    codes: dict[str, str] = {}
    for each in items(obj(organization).get("identifier")):
        system, value = text(obj(each).get("system")), text(obj(each).get("value"))
        if system is not None and value is not None:
            codes.setdefault(system, value)
    sor = codes.get(SOR)
    if not is_sor(sor):
        return None
    assert sor is not None
    gln = codes.get(GLN) or ""
    name = plain(text(obj(organization).get("name")) or "")[:200]
    return Party(sor=sor, gln=gln if is_gln(gln) else "", name=name or sor)


def event_of(message: Any) -> str:
    """The MessageHeader's event code ('' when there is none)."""
    return text(obj(obj(header_of(message)).get("eventCoding")).get("code")) or ""


def current_provenance(message: Any) -> dict[str, Any] | None:
    """The Provenance of this message's own step (its target is this message's MessageHeader)."""
    head = header_of(message)
    ident = text(obj(head).get("id"))
    if ident is None:
        return None
    own = f"MessageHeader/{ident}"
    for each in entries(message):
        if each.get("resourceType") != "Provenance":
            continue
        targets = [text(obj(t).get("reference")) for t in items(each.get("target"))]
        if any(t is not None and (t == own or t.endswith("/" + own)) for t in targets):
            return each
    return None


def activity_of(provenance: Any) -> str | None:
    for coding in items(obj(obj(provenance).get("activity")).get("coding")):
        if obj(coding).get("system") == ACTIVITIES and isinstance(obj(coding).get("code"), str):
            return str(coding["code"])
    return None


X_ECPR = "urn:oid:1.2.208.176.1.6.1.1"  # the national replacement CPR (X-eCPR), DK-core


def identity_of(resource: Any) -> tuple[str, str] | None:
    """(system, value) of the citizen's CPR number, or of a replacement CPR (X-eCPR or a region's D-eCPR)
    when the citizen has none; MedCom's messages carry one of them."""
    found = [
        (str(each["system"]), str(each["value"]))
        for each in items(obj(resource).get("identifier"))
        if isinstance(each, dict)
        and isinstance(each.get("system"), str)
        and isinstance(each.get("value"), str)
    ]
    for system, value in found:
        if system == CPR:
            return system, value
    for system, value in found:
        if system == X_ECPR or system.startswith("urn:oid:1.2.208.176.1.6."):
            return system, value
    return None


def is_test_data(resource: Any) -> bool:
    """Whether a stored resource is synthetic test data (FHIR's HTEST tag, as `naer synth` writes it)."""
    meta = obj(resource).get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return isinstance(tags, list) and any(
        isinstance(t, dict)
        and t.get("system") == SYNTHETIC_TAG["system"]
        and t.get("code") == SYNTHETIC_TAG["code"]
        for t in tags
    )


def cpr_of(resource: Any) -> str | None:
    found = identity_of(resource)
    return found[1] if found else None
