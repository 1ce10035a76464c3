"""CareCommunication (korrespondancemeddelelse): a new message, a reply and a forward, by the guide's
rules for identifiers and threads.

- A new message starts a thread with a new Communication identifier.
- A reply keeps the Communication identifier and carries every earlier segment of the thread.
- A forward gets a new Communication identifier and carries the thread it forwards.
- An attachment is sent once, with its data; later messages of the thread carry its title, author and
  identifier but not the data again (the guide's examples do the same).
- Each segment (text or attachment) has its own identifier, assigned by its author's organisation.
- The category comes from MedCom's list. A topic is required when the category is "other". A priority
  is only allowed with "regarding-referral" (invariants medcom-careCommunication-5 and -6).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from naer.messaging import parts
from naer.messaging.definitions import load
from naer.messaging.parts import Citizen, Party

GUIDE = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition"
MESSAGE = f"{GUIDE}/medcom-careCommunication-message"
HEADER = f"{GUIDE}/medcom-careCommunication-messageHeader"
COMMUNICATION = f"{GUIDE}/medcom-careCommunication-communication"
PROVENANCE = f"{GUIDE}/medcom-careCommunication-provenance"
DEFINITION = "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/MedComCareCommunicationMessageDefinition|5.0"
EVENT = "care-communication-message"
CATEGORIES = f"{parts.TERMINOLOGY}/medcom-careCommunication-categoryCodes"
ROLES = f"{parts.TERMINOLOGY}/medcom-core-PractitionerRolesSKSadministrativ"
MIME_TYPES = "http://medcomfhir.dk/ig/terminology/ValueSet/medcom-core-attachmentMimeTypes"
EXT_DATE = f"{parts.CORE}/medcom-core-datetime-extension"
EXT_IDENTIFIER = f"{parts.CORE}/medcom-core-identifier-extension"
EXT_AUTHOR = f"{parts.CORE}/medcom-core-practitioner-extension"
EXT_CONTACT = f"{parts.CORE}/medcom-core-contact-extension"
MAX_ATTACHMENT = 10 * 1024 * 1024  # bytes of one attachment; docs/messaging.md says why this number
MAX_TEXT = 100_000  # characters of one segment's text
ACTIVITY = {"new": "new-message", "reply": "reply-message", "forward": "forward-message"}


class Refused(ValueError):
    """A CareCommunication the guide does not allow; the message says which rule."""


@dataclass(frozen=True)
class Author:
    given: str
    family: str
    role: str  # a code of MedCom's SKS administrative roles (sygeplejerske, speciallaege, ...)
    phone: str

    @property
    def id(self) -> str:
        key = f"{self.given}|{self.family}|{self.role}"
        return "author-" + uuid.uuid5(uuid.NAMESPACE_OID, key).hex[:20]


@dataclass(frozen=True)
class Segment:
    """One part of a thread: a text or an attachment, by an author of an organisation, at a time."""

    identifier: str  # urn:uuid:...
    at: datetime
    author: Author | None
    organisation: Party
    text: str | None = None
    title: str | None = None
    content_type: str | None = None
    data: str | None = None  # base64; dropped once the attachment has been sent

    @property
    def is_attachment(self) -> bool:
        return self.text is None


@dataclass(frozen=True)
class Step:
    header: str
    activity: str
    at: datetime
    agent: Party
    segments: tuple[str, ...]  # identifiers of the segments this message added
    previous: str | None = None
    previous_by_identifier: bool = False  # the earlier message named by identifier (as MedCom's examples)


@dataclass(frozen=True)
class Thread:
    """What the sender knows of a conversation: its identifier, category, topic and what was said."""

    identifier: str
    category: str
    topic: str | None = None
    priority: str | None = None
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    history: tuple[Step, ...] = field(default_factory=tuple)


def segment_id() -> str:
    return f"urn:uuid:{parts.new_id()}"


def text_segment(text: str, author: Author, organisation: Party, at: datetime) -> Segment:
    if not text.strip():
        raise Refused("a message segment needs a text")
    if len(text) > MAX_TEXT:
        raise Refused(f"a message segment holds at most {MAX_TEXT} characters")
    return Segment(segment_id(), at, author, organisation, text=text)


def attachment_segment(
    title: str, content_type: str, data: bytes, author: Author | None, organisation: Party, at: datetime
) -> Segment:
    allowed = {code for _, code in load().valueset(MIME_TYPES) or ()}
    if content_type not in allowed:
        raise Refused(f"an attachment may be {', '.join(sorted(allowed))}, not {content_type!r}")
    if not data:
        raise Refused("an attachment needs content")
    if len(data) > MAX_ATTACHMENT:
        raise Refused(f"an attachment holds at most {MAX_ATTACHMENT // (1024 * 1024)} MiB")
    if not title.strip() or "." in title.rsplit(" ", 1)[-1][-5:]:
        raise Refused("an attachment needs a title, without a file type ('.pdf') in it")
    encoded = base64.b64encode(data).decode("ascii")
    return Segment(
        segment_id(), at, author, organisation, title=title, content_type=content_type, data=encoded
    )


def check_thread(thread: Thread) -> None:
    codes = {code for code in load().codesystems.get(CATEGORIES, frozenset())}
    if thread.category not in codes:
        raise Refused(f"category {thread.category!r} is not one of MedCom's ({', '.join(sorted(codes))})")
    if thread.category == "other" and not (thread.topic or "").strip():
        raise Refused("a message of category 'other' needs a topic")
    if thread.priority is not None and thread.category != "regarding-referral":
        raise Refused("a priority is only allowed on a message regarding a referral")
    if thread.priority not in (None, "asap"):
        raise Refused("the only priority a CareCommunication carries is 'asap'")
    if thread.topic is not None and len(thread.topic) > 60:
        raise Refused("a topic holds at most 60 characters")


def build(
    kind: str,
    thread: Thread,
    new: list[Segment],
    sender: Party,
    receiver: Party,
    citizen: Citizen,
    at: datetime,
) -> tuple[dict[str, Any], Thread]:
    """The message that adds ``new`` to ``thread`` (``kind``: new, reply or forward), and the thread as it
    stands after it. A forward starts a new thread that carries the old one's segments."""
    if kind not in ACTIVITY:
        raise Refused(f"a CareCommunication is new, reply or forward, not {kind!r}")
    if not any(not each.is_attachment for each in new):
        raise Refused("a message needs at least one text segment (an attachment goes with a text)")
    if kind == "new" and thread.history:
        raise Refused("a new message starts a thread; answer an earlier one with a reply")
    if kind != "new" and not thread.history:
        raise Refused(f"a {kind} answers an earlier message; this thread has none")
    check_thread(thread)
    identifier = segment_id() if kind == "forward" else thread.identifier
    head_id = parts.new_id()
    previous = thread.history[-1].header if thread.history else None
    earlier = [replace(each, data=None) if each.is_attachment else each for each in thread.segments]
    segments = [*earlier, *new]
    patient = parts.patient(citizen)
    authors: list[dict[str, Any]] = []
    payload = []
    for each in segments:
        payload.append(_payload(each, authors))
    communication: dict[str, Any] = {
        "resourceType": "Communication",
        "id": parts.new_id(),
        "meta": {"profile": [COMMUNICATION]},
        "text": parts.narrative(*(each.text or each.title or "" for each in segments)),
        "identifier": [{"value": identifier}],
        "status": "unknown",
        "category": [{"coding": [{"system": CATEGORIES, "code": thread.category}]}],
        "subject": parts.ref(patient),
        "payload": payload,
    }
    if thread.priority:
        communication["priority"] = thread.priority
    if thread.topic:
        communication["topic"] = {"text": thread.topic}
    head = parts.header(
        HEADER, EVENT, sender, receiver, communication, header_id=head_id, definition=DEFINITION
    )
    steps = [_provenance(step) for step in thread.history]
    step = Step(head_id, ACTIVITY[kind], at, sender, tuple(each.identifier for each in new), previous)
    resources = [
        head,
        patient,
        communication,
        *authors,
        parts.organization(sender),
        parts.organization(receiver),
        *(parts.organization(each.organisation) for each in segments),  # the bundle keeps each once
        *steps,
        _provenance(step),
    ]
    message = parts.bundle(MESSAGE, resources, at)
    after = Thread(
        identifier=identifier,
        category=thread.category,
        topic=thread.topic,
        priority=thread.priority,
        segments=tuple(replace(each, data=None) if each.is_attachment else each for each in segments),
        history=(*thread.history, step),
    )
    return message, after


def _payload(segment: Segment, authors: list[dict[str, Any]]) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {"url": EXT_DATE, "valueDateTime": parts.instant(segment.at)},
        {
            "url": EXT_IDENTIFIER,
            "valueIdentifier": {
                "value": segment.identifier,
                "assigner": {"reference": f"Organization/{segment.organisation.id}"},
            },
        },
    ]
    if segment.author is not None:
        role, person = _author(segment.author, segment.organisation)
        authors.extend([role, person])
        extensions.append({"url": EXT_AUTHOR, "valueReference": parts.ref(role)})
        extensions.append(
            {"url": EXT_CONTACT, "valueContactPoint": {"system": "phone", "value": segment.author.phone}}
        )
    if segment.is_attachment:
        attachment: dict[str, Any] = {"title": segment.title, "creation": parts.instant(segment.at)}
        if segment.content_type:
            attachment["contentType"] = segment.content_type
        if segment.data:
            attachment["data"] = segment.data
        return {"extension": extensions, "contentAttachment": attachment}
    return {"extension": extensions, "contentString": segment.text}


def _author(author: Author, organisation: Party) -> tuple[dict[str, Any], dict[str, Any]]:
    person = {
        "resourceType": "Practitioner",
        "id": author.id,
        "meta": {"profile": [f"{parts.CORE}/medcom-core-practitioner"]},
        "text": parts.narrative(f"{author.given} {author.family}"),
        "name": [{"family": author.family, "given": [author.given]}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": f"{author.id}-role",
        "meta": {"profile": [f"{parts.CORE}/medcom-core-practitionerrole"]},
        "text": parts.narrative(f"{author.given} {author.family}, {author.role}"),
        "practitioner": parts.ref(person),
        "organization": {"reference": f"Organization/{organisation.id}"},
        "code": [{"coding": [{"system": ROLES, "code": author.role}]}],
    }
    return role, person


def _provenance(step: Step) -> dict[str, Any]:
    entity: list[dict[str, Any]] = [
        {"role": "source", "what": {"identifier": {"value": each}}} for each in step.segments
    ]
    if step.previous_by_identifier and step.previous:
        entity.append({"role": "revision", "what": {"identifier": {"value": step.previous}}})
    elif step.previous:
        entity.append({"role": "revision", "what": {"reference": f"MessageHeader/{step.previous}"}})
    return parts.provenance(PROVENANCE, step.header, step.activity, step.agent, step.at, entity=entity)


def check_data(segment: Segment) -> None:
    """An attachment's data is base64 of at most the size allowed (for attachments read from outside)."""
    if segment.data is None:
        return
    try:
        raw = base64.b64decode(segment.data, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("an attachment's data is not base64") from None
    if len(raw) > MAX_ATTACHMENT:
        raise Refused(f"an attachment holds at most {MAX_ATTACHMENT // (1024 * 1024)} MiB")


# -- reading a received CareCommunication ------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """One segment of a received message, as the pages show it."""

    identifier: str
    at: str
    author: str
    text: str | None
    title: str | None
    content_type: str | None
    has_data: bool


def read(message: dict[str, Any]) -> tuple[str, str, str | None, list[Said]]:
    """(thread identifier, category, topic, segments) of a validated CareCommunication."""
    communication = parts.first(message, "Communication") or {}
    identifier = str(((communication.get("identifier") or [{}])[0]).get("value", ""))
    category = str((((communication.get("category") or [{}])[0].get("coding") or [{}])[0]).get("code", ""))
    topic = (communication.get("topic") or {}).get("text")
    said = []
    for each in communication.get("payload") or []:
        if not isinstance(each, dict):
            continue
        ext = {e.get("url"): e for e in each.get("extension") or [] if isinstance(e, dict)}
        author = ""
        role = parts.resolve(message, (ext.get(EXT_AUTHOR) or {}).get("valueReference"))
        if role is not None:
            person = parts.resolve(message, role.get("practitioner")) or {}
            name = (person.get("name") or [{}])[0]
            author = " ".join([*name.get("given", []), name.get("family", "")]).strip()
        attachment = (
            each.get("contentAttachment") if isinstance(each.get("contentAttachment"), dict) else None
        )
        said.append(
            Said(
                identifier=str(
                    ((ext.get(EXT_IDENTIFIER) or {}).get("valueIdentifier") or {}).get("value", "")
                ),
                at=str((ext.get(EXT_DATE) or {}).get("valueDateTime", "")),
                author=author,
                text=each.get("contentString") if isinstance(each.get("contentString"), str) else None,
                title=attachment.get("title") if attachment else None,
                content_type=attachment.get("contentType") if attachment else None,
                has_data=bool(attachment and attachment.get("data")),
            )
        )
    return identifier, category, topic if isinstance(topic, str) else None, said


def thread_of(message: dict[str, Any]) -> Thread:
    """The thread a received or sent message carries, to reply to it or forward it: its segments (an
    attachment's data is not sent again) and its history of steps."""
    communication = parts.first(message, "Communication") or {}
    identifier, category, topic, _said = read(message)
    segments = []
    for each in communication.get("payload") or []:
        if not isinstance(each, dict):
            continue
        ext = {e.get("url"): e for e in each.get("extension") or [] if isinstance(e, dict)}
        ident = (ext.get(EXT_IDENTIFIER) or {}).get("valueIdentifier") or {}
        organisation = parts.party_of(parts.resolve(message, ident.get("assigner")))
        at = _moment((ext.get(EXT_DATE) or {}).get("valueDateTime"))
        if organisation is None or at is None or not isinstance(ident.get("value"), str):
            continue
        author = _author_of(message, ext)
        attachment = (
            each.get("contentAttachment") if isinstance(each.get("contentAttachment"), dict) else None
        )
        segments.append(
            Segment(
                identifier=ident["value"],
                at=at,
                author=author,
                organisation=organisation,
                text=each.get("contentString") if isinstance(each.get("contentString"), str) else None,
                title=str(attachment.get("title", "")) if attachment else None,
                content_type=attachment.get("contentType") if attachment else None,
            )
        )
    history = []
    for provenance in parts.entries(message):
        if provenance.get("resourceType") != "Provenance":
            continue
        target = str(((provenance.get("target") or [{}])[0]).get("reference", ""))
        agent = parts.party_of(parts.resolve(message, ((provenance.get("agent") or [{}])[0]).get("who")))
        at = _moment(provenance.get("occurredDateTime"))
        activity = parts.activity_of(provenance)
        if agent is None or at is None or activity is None or not target.startswith("MessageHeader/"):
            continue
        sources = tuple(
            str((e.get("what") or {}).get("identifier", {}).get("value", ""))
            for e in provenance.get("entity") or []
            if isinstance(e, dict) and e.get("role") == "source"
        )
        previous, by_identifier = _revision(provenance)
        history.append(Step(target.rpartition("/")[2], activity, at, agent, sources, previous, by_identifier))
    priority = communication.get("priority")
    return Thread(
        identifier=identifier,
        category=category,
        topic=topic,
        priority=priority if isinstance(priority, str) else None,
        segments=tuple(segments),
        history=tuple(history),
    )


def _revision(provenance: dict[str, Any]) -> tuple[str | None, bool]:
    """The earlier message a step revises: by reference (MessageHeader/ID), or by identifier."""
    for e in provenance.get("entity") or []:
        if not isinstance(e, dict) or e.get("role") != "revision":
            continue
        what = parts.obj(e.get("what"))
        ref = what.get("reference")
        if isinstance(ref, str) and ref.startswith("MessageHeader/") and len(ref) > len("MessageHeader/"):
            return ref.rpartition("/")[2], False
        value = parts.obj(what.get("identifier")).get("value")
        if isinstance(value, str) and value:
            return value, True
    return None, False


def _author_of(message: dict[str, Any], ext: dict[Any, Any]) -> Author | None:
    role = parts.resolve(message, (ext.get(EXT_AUTHOR) or {}).get("valueReference"))
    if role is None:
        return None
    person = parts.resolve(message, role.get("practitioner")) or {}
    name = (person.get("name") or [{}])[0]
    codes = [c.get("code") for cc_ in role.get("code") or [] for c in (cc_ or {}).get("coding") or []]
    phone = ((ext.get(EXT_CONTACT) or {}).get("valueContactPoint") or {}).get("value", "")
    return Author(
        given=" ".join(name.get("given", [])) or "-",
        family=str(name.get("family", "-")),
        role=str(next((c for c in codes if isinstance(c, str)), "sygeplejerske")),
        phone=str(phone or "-"),
    )


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else None
