"""A clinician writes a CareCommunication: new (from the citizen's page), a reply or a forward (from a
message of their organisation's). It is built to MedCom's rules, stored in the outbox and sent at once.

The clinician must be able to see the citizen (the store reads the Patient for them: the access policy
decides, and the read is audited). The sender is the clinician's organisation, which needs a SOR code;
the receiver is a unit of the directory with one. Refusals are the store's errors (a page shows them, the
API answers them as an OperationOutcome).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Engine

from naer import clock
from naer.access.context import AccessContext
from naer.messaging import carecommunication as cc
from naer.messaging import directory, lists, outbox, parts
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid, NotFound

TOPIC = 60
# Nær's roles as MedCom's SKS administrative role codes (medcom-core-PractitionerRolesSKSadministrativ)
ROLE_CODES = {
    "home-care-nurse": "sygeplejerske",
    "acute-bed-nurse": "sygeplejerske",
    "gp": "speciallaegeipraksis",
    "hospital-physician": "sygehuslaege",
}


@dataclass(frozen=True)
class Attachment:
    title: str
    content_type: str
    data: str  # base64


def send(
    db: Engine,
    context: RequestContext,
    patient: str,
    text: str,
    phone: str,
    receiver: str | None = None,
    category: str | None = None,
    topic: str | None = None,
    priority: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    answering: tuple[str, str] | None = None,
    forward: bool = False,
    now: datetime | None = None,
) -> str:
    """Write and send a CareCommunication; returns its MessageHeader id. ``answering`` is the (direction,
    MessageHeader id) of a message of the asker's organisation to reply to, or to forward to ``receiver``."""
    if not isinstance(context, AccessContext):
        raise Invalid("a CareCommunication is written by a signed-in person")
    if context.principal.role not in ROLE_CODES:
        raise Forbidden("care communications are written by the health professionals around the citizen")
    if len(text) > cc.MAX_TEXT:
        raise Invalid(f"a message holds at most {cc.MAX_TEXT:,} characters; this one has {len(text):,}")
    if topic is not None and len(topic) > TOPIC:
        raise Invalid(f"a topic holds at most {TOPIC} characters")
    for label, value in (("the message", text), ("the topic", topic or ""),
                         *(("an attachment's title", a.title) for a in attachments)):  # fmt: skip
        if not all(parts.allowed(ch) for ch in value):
            raise Invalid(
                f"{label} holds a control character (or U+FFFE, U+FFFF), which a MedCom message may not carry"
            )
    if not text.strip():
        raise Invalid("write the message: it is empty")
    now = now or clock.now()
    with db.connect() as con:
        sender = directory.unit_by_id(con, context.principal.organization or "")
    if sender is None:
        raise Invalid("your organisation has no SOR code in the directory, so it cannot send MedCom messages")
    stored = store.read(db, context, "Patient", patient)  # the access policy decides; it is audited
    person = orjson.loads(stored.content or "{}")
    try:
        citizen = parts.citizen_of(person)
    except parts.NotSendable as exc:
        raise Invalid(str(exc)) from None
    thread: cc.Thread
    if answering is not None:
        found = lists.one(db, context, *answering)
        if found is None or found[0].kind != "care-communication" or found[0].patient != patient:
            raise NotFound("no such CareCommunication about this citizen in your organisation's messages")
        thread = cc.thread_of(found[0].body)
        kind = "forward" if forward else "reply"
        if not forward:
            other = found[0].body
            head = parts.first(other, "MessageHeader") or {}
            side = head.get("sender") if found[0].direction == "in" else head["destination"][0]["receiver"]
            counterpart = parts.party_of(parts.resolve(other, side))
            receiver = counterpart.sor if counterpart else None
    else:
        kind = "new"
        thread = cc.Thread(identifier=cc.segment_id(), category=category or "", topic=topic or None,
                           priority=priority or None)  # fmt: skip
    with db.connect() as con:
        to = directory.unit(con, receiver or "")
    if to is None:
        raise Invalid("choose a receiving unit with a SOR code from the directory")
    if to.party.sor == sender.party.sor:
        raise Invalid("a CareCommunication goes to another organisation than your own")
    author = _author(context, phone)
    try:
        new = [cc.text_segment(text, author, sender.party, now)]
        for each in attachments:
            try:
                data = base64.b64decode(each.data, validate=True)
            except (binascii.Error, ValueError):
                raise cc.Refused(f"attachment {each.title!r} is not base64") from None
            new.append(cc.attachment_segment(each.title, each.content_type, data, author, sender.party, now))
        message, after = cc.build(kind, thread, new, sender.party, to.party, citizen, now)
    except cc.Refused as exc:
        raise Invalid(str(exc)) from None
    with db.begin() as con:
        header = outbox.put(
            con, message, "care-communication", kind, sender.id, patient, thread=after.identifier
        )
    outbox.send_due(db)
    return header


def _author(context: AccessContext, phone: str) -> cc.Author:
    digits = "".join(ch for ch in phone if "0" <= ch <= "9" or ch in "+-")
    if not any(ch.isdigit() for ch in digits) or len(digits) > 20:
        raise Invalid("a phone number the receiver can call back on (MedCom signs every message with one)")
    words = parts.plain(context.principal.display).split()
    given, family = (" ".join(words[:-1]) or words[0], words[-1]) if words else ("-", "-")
    role = ROLE_CODES.get(context.principal.role, "sygeplejerske")
    return cc.Author(given=given, family=family, role=role, phone=digits)
