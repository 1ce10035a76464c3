"""What every workflow reads and checks the same way: codes and references in FHIR values, the text and
ids a person sends, the asker as a FHIR reference, a Task's state as a businessStatus, and the platform's
own reading of the directory (organisations and roles, which are no citizen's record)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer.access.context import AccessContext
from naer.access.principal import Principal
from naer.access.scopes import parse_scopes
from naer.coordination.machine import Workflow
from naer.fhir.systems import MUNICIPALITY_CODES, MUNICIPALITY_EXTENSION, NAER, SECTOR, SECTOR_EXTENSION
from naer.store import resources as store
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Forbidden, Invalid, NotFound

WORKFLOW_CODES = f"{NAER}/CodeSystem/workflow"
INPUT_TYPE = f"{NAER}/CodeSystem/workflow-input"
ROLE_CODES = f"{NAER}/CodeSystem/practitioner-role"
MAX_TEXT = 10_000
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
OPEN_TASK = "requested,received,accepted,ready,in-progress,on-hold"

# Nær itself, moving Tasks on the clock (escalation): a system client whose writes are audited.
COORDINATION = Principal(
    account="naer-coordination",
    display="Nær (samarbejdsforløb)",
    role="system",
    scopes=parse_scopes("system/*.cruds"),
    address="local",
)


def state_system(flow: Workflow) -> str:
    """The code system of a workflow's states (Task.businessStatus): advice -> .../advice-status."""
    return f"{NAER}/CodeSystem/{flow.id}-status"


def ref_id(value: Any, kind: str) -> str | None:
    """The id a reference names when it is to a ``kind`` (``{"reference": "Patient/p1"}`` -> p1)."""
    ref = value.get("reference") if isinstance(value, dict) else None
    if isinstance(ref, str) and ref.startswith(f"{kind}/"):
        return ref.split("/", 1)[1]
    return None


def codes(concepts: Any, system: str) -> list[str]:
    """The codes of ``system`` in a CodeableConcept or a list of them."""
    found = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
            if coding.get("system") == system and isinstance(coding.get("code"), str):
                found.append(coding["code"])
    return found


def state_of(task: dict[str, Any], flow: Workflow) -> str | None:
    """The workflow state a Task is in (its businessStatus in the workflow's code system)."""
    found = codes(task.get("businessStatus"), state_system(flow))
    return found[0] if found else None


def state_concept(flow: Workflow, state: str) -> dict[str, Any]:
    shown = flow.state(state)
    coding = {"system": state_system(flow), "code": state, "display": shown.title_da}
    return {"coding": [coding], "text": shown.title}


def is_workflow(task: dict[str, Any], flow: Workflow) -> bool:
    return codes(task.get("code"), WORKFLOW_CODES) == [flow.code]


def input_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": INPUT_TYPE, "code": code}]}


def inputs(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A Task's inputs by their type code."""
    found = {}
    for item in task.get("input") or []:
        kind = codes(item.get("type"), INPUT_TYPE)
        if kind:
            found[kind[0]] = item
    return found


def instant(moment: datetime) -> str:
    return store.instant(moment)


def aware(value: str) -> datetime:
    """A FHIR dateTime as an aware moment (a date, or a time without zone, is taken as UTC)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def text(value: Any, what: str, required: bool = True) -> str | None:
    """Text a person sent, checked: not empty (when required), at most MAX_TEXT characters, no NUL."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{what} must not be empty", where=what)
        return None
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text", where=what)
    if len(value) > MAX_TEXT:
        raise Invalid(f"{what} is longer than {MAX_TEXT:,} characters", where=what)
    if "\x00" in value:
        raise Invalid(f"{what} holds a NUL character", where=what)
    return value.strip()


def ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not ID.match(value):
        raise Invalid(f"{what} must be a FHIR id (letters, digits, '-' and '.', at most 64)", where=what)
    return value


def load(version: store.Stored) -> dict[str, Any]:
    return orjson.loads(version.content or "{}")  # type: ignore[no-any-return]


def directory(db: Engine | Connection, kind: str, rid: str) -> dict[str, Any] | None:
    """A resource that belongs to no citizen (an organisation, a role), read as the platform: where a
    workflow sends something is not a record of anyone."""
    try:
        return load(store.read(db, SYSTEM, kind, rid, audit=False))
    except (NotFound, Invalid):
        return None


def chain(db: Engine | Connection, org: dict[str, Any]) -> list[dict[str, Any]]:
    """``org`` and the organisations above it (Organization.partOf upwards, as accounts.ancestors walks
    it for the access policy's blocks), each read from the directory."""
    from naer.access.accounts import ancestors

    engine = db.engine if isinstance(db, Connection) else db
    above = (directory(db, "Organization", rid) for rid in ancestors(engine, str(org.get("id", ""))))
    return [org, *(found for found in above if found is not None)]


def asker_ref(p: Principal) -> dict[str, str]:
    """The signed-in health professional as a reference (their PractitionerRole, else Practitioner)."""
    if p.practitioner_role:
        return {"reference": f"PractitionerRole/{p.practitioner_role}", "display": p.display}
    if p.practitioner:
        return {"reference": f"Practitioner/{p.practitioner}", "display": p.display}
    raise Forbidden("this is done by health professionals (an account with a practitioner)")


def mine(p: Principal) -> set[str]:
    """The references that name the asker as a person."""
    return {f"PractitionerRole/{p.practitioner_role}", f"Practitioner/{p.practitioner}"}


def require_person(context: RequestContext) -> AccessContext:
    if not isinstance(context, AccessContext):
        raise Forbidden("the workflows act for a signed-in person")
    return context


def municipality(patient: dict[str, Any]) -> str | None:
    """The citizen's municipality: the code on the current home address (DK-core's extension)."""
    for address in patient.get("address") or []:
        if address.get("use") not in (None, "home") or (address.get("period") or {}).get("end"):
            continue
        for ext in address.get("extension") or []:
            if ext.get("url") == MUNICIPALITY_EXTENSION:
                found = codes(ext.get("valueCodeableConcept"), MUNICIPALITY_CODES)
                if found:
                    return found[0]
    return None


def sector(org: dict[str, Any]) -> str | None:
    """An organisation's sector (region, municipality, general-practice) from Nær's extension."""
    for ext in org.get("extension") or []:
        if ext.get("url") == SECTOR_EXTENSION:
            coding = ext.get("valueCoding") or {}
            if coding.get("system") == SECTOR:
                return str(coding.get("code"))
    return None
