"""Acknowledgement: the answer to every MedCom message (ok, transient-error or fatal-error).

The answer quotes the original MessageHeader id (``response.identifier``) and goes back to its sender.
A negative one carries an OperationOutcome that names each problem with MedCom's error codes. An
acknowledgement is never acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from naer.messaging import parts
from naer.messaging.definitions import load
from naer.messaging.parts import Party

GUIDE = "http://medcomfhir.dk/ig/acknowledgement/StructureDefinition"
MESSAGE = f"{GUIDE}/medcom-messaging-acknowledgement"
HEADER = f"{GUIDE}/medcom-messaging-acknowledgementHeader"
OUTCOME = f"{GUIDE}/medcom-acknowledgement-operationoutcome"
PROVENANCE = f"{parts.MESSAGING}/medcom-messaging-provenance"
EVENT = "acknowledgement-message"
ISSUE_DETAILS = "http://medcomfhir.dk/ig/terminology/ValueSet/medcom-acknowledgement-issue-details"
CODES = ("ok", "transient-error", "fatal-error")


@dataclass(frozen=True)
class Issue:
    """One problem for the OperationOutcome: MedCom's error code, and the text that names it."""

    text: str
    code: str = "invalid"  # FHIR issue-type
    medcom: str | None = None  # a code of medcom-acknowledgement-error-codes
    location: str | None = None


def build(
    original: dict[str, Any],
    code: str,
    issues: list[Issue],
    us: Party,
    them: Party,
    at: datetime,
) -> dict[str, Any]:
    """The acknowledgement of ``original`` (a message Bundle) sent by ``us`` back to ``them``. The original's
    own step is carried only when the original is acknowledged ok (a refused one's may be broken)."""
    if code not in CODES:
        raise ValueError(f"an acknowledgement is {', '.join(CODES)}, not {code!r}")
    if code != "ok" and not issues:
        raise ValueError("a negative acknowledgement names its problem")
    original_id = parts.text(parts.obj(parts.header_of(original)).get("id")) or ""
    response: dict[str, Any] = {"identifier": original_id, "code": code}
    resources: list[dict[str, Any]] = []
    outcome = None
    if code != "ok":
        outcome = _outcome(issues)
        response["details"] = parts.ref(outcome)
    head = parts.header(HEADER, EVENT, us, them, None, response=response)
    resources.append(head)
    original_step = parts.current_provenance(original) if code == "ok" else None
    if original_step is not None and parts.activity_of(original_step):
        # The original's own step, so that the history of the acknowledged message is in the answer
        resources.append(original_step)
    resources.append(
        parts.provenance(PROVENANCE, head["id"], "acknowledgement", us, at, previous=original_id)
    )
    resources += [parts.organization(us), parts.organization(them)]
    if outcome is not None:
        resources.append(outcome)
    return parts.bundle(MESSAGE, resources, at)


def _outcome(issues: list[Issue]) -> dict[str, Any]:
    items = []
    for issue in issues:
        item: dict[str, Any] = {
            "severity": "error",
            "code": issue.code,
            "details": {"text": issue.text[:1000]},
        }
        if issue.medcom:
            item["details"]["coding"] = [{"system": _system(issue.medcom), "code": issue.medcom}]
        if issue.location:
            item["expression"] = [printable(issue.location)[:500]]
        items.append(item)
    return {
        "resourceType": "OperationOutcome",
        "id": parts.new_id(),
        "meta": {"profile": [OUTCOME]},
        "text": parts.narrative(*(printable(issue.text)[:200] for issue in issues)),
        "issue": items,
    }


def _system(code: str) -> str:
    """The code system of an issue code: MedCom's own error codes or HL7's operation-outcome codes, both
    in the value set the acknowledgement binds (medcom-acknowledgement-issue-details)."""
    for system, known in load().valueset(ISSUE_DETAILS) or ():
        if known == code:
            return system
    raise ValueError(f"{code!r} is not an acknowledgement issue code")


def printable(value: str) -> str:
    """Text without the control characters FHIR strings may not hold (only tab, CR and LF)."""
    return "".join(ch if ch >= " " or ch in "\t\r\n" else "\ufffd" for ch in value)


def is_acknowledgement(message: Any) -> bool:
    return parts.event_of(message) == EVENT


def answer_of(message: Any) -> tuple[str, str] | None:
    """(acknowledged MessageHeader id, code) of an acknowledgement."""
    response = parts.obj(parts.obj(parts.header_of(message)).get("response"))
    ident, code = parts.text(response.get("identifier")), parts.text(response.get("code"))
    if ident is not None and code is not None:
        return ident, code
    return None
