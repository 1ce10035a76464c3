"""What a person sees of the messages: their organisation's messages sent and received, one message with
its thread or its stay's notifications, and the municipal unit's citizens admitted to hospital now.

The access policy's condition is inside every query (the message's citizen, as a Patient, must be one
the asker may see now); a message that names no citizen Nær knows (a refused one) is shown without one.
Every citizen shown is an audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, literal, or_, select, true
from sqlalchemy.sql import ColumnElement

from naer.access.context import AccessContext
from naer.messaging import carecommunication as cc
from naer.messaging import notification, parts
from naer.messaging.tables import hospital_stay, message

SHOWN = 200
ADMITTED = ("admitted", "emergency", "leave")


@dataclass
class Shown:
    """A message as the pages show it."""

    direction: str
    header: str
    kind: str
    code: str
    state: str
    ack_code: str | None
    created: datetime  # when Nær received or stored it
    happened: datetime  # the sender's time of the event (a notification's step, a message's sending)
    counterpart: str
    citizen: str | None  # the citizen's name, when the asker may see the citizen
    patient: str | None
    thread: str | None
    episode: str | None
    attempts: int
    problems: list[str] = field(default_factory=list)
    said: list[cc.Said] = field(default_factory=list)
    topic: str | None = None
    category: str | None = None
    stay: notification.Notice | None = None
    body: dict[str, Any] = field(default_factory=dict)
    sender_sor: str = ""

    @property
    def key(self) -> str:
        """How a page names the message: a received one by its sender's SOR code and MessageHeader id (two
        senders may use one id), a sent one by its id."""
        return (
            f"{self.sender_sor}:{self.header}" if self.direction == "in" and self.sender_sor else self.header
        )


def _seen(context: AccessContext) -> ColumnElement[bool]:
    """The rows whose citizen the asker may see, or that name none."""
    condition = context.visible(literal("Patient"), message.c.patient)
    return true() if condition is None else or_(message.c.patient.is_(None), condition)


def listed(db: Engine, context: AccessContext, direction: str | None = None) -> list[Shown]:
    """The asker's organisation's messages, newest first (a received message about a citizen the unit
    does not serve is not shown)."""
    org = context.principal.organization
    if org is None:
        return []
    where = [message.c.organization == org, message.c.state != "not-served", _seen(context)]
    if direction in ("in", "out"):
        where.append(message.c.direction == direction)
    with db.connect() as con:
        rows = con.execute(
            select(message)
            .where(and_(*where))
            .order_by(message.c.event_at.desc(), message.c.created.desc())
            .limit(SHOWN)
        ).all()
    shown = [_shown(row) for row in rows]
    _audit(context, shown, "messages listed")
    return shown


def one(db: Engine, context: AccessContext, direction: str, header: str) -> tuple[Shown, list[Shown]] | None:
    """One message of the asker's organisation (``header``: its MessageHeader id, or ``SOR:ID`` for a
    received one: ``Shown.key``) and the others of its thread (a CareCommunication) or of
    its stay (a HospitalNotification), oldest first; None when there is no such message for the asker."""
    org = context.principal.organization
    if org is None or direction not in ("in", "out"):
        return None
    seen = _seen(context)
    sender, _, bare = header.rpartition(":")  # "SOR:ID" names a received message by its sender too
    by_sender = [message.c.sender_sor == sender] if sender else []
    with db.connect() as con:
        row = con.execute(
            select(message).where(
                message.c.direction == direction,
                message.c.header_id == bare,
                message.c.organization == org,
                message.c.state != "not-served",
                seen,
                *by_sender,
            )
        ).first()
        if row is None:
            return None
        related: Sequence[Any] = ()
        if row.thread:
            related = con.execute(
                select(message)
                .where(message.c.thread == row.thread, message.c.organization == org, seen)
                .order_by(message.c.event_at, message.c.created)
            ).all()
        elif row.episode:
            related = con.execute(
                select(message)
                .where(message.c.episode == row.episode, message.c.organization == org, seen)
                .order_by(message.c.event_at, message.c.created)
            ).all()
    found = _shown(row)
    others = [_shown(r) for r in related]
    _audit(context, [found], f"message {header}")
    return found, others


def admitted(db: Engine, context: AccessContext, patient: str | None = None) -> list[dict[str, Any]]:
    """The asker's unit's citizens in hospital now, as the hospitals' notifications say (``patient``:
    one citizen's stays only, for the citizen's course)."""
    org = context.principal.organization
    if org is None:
        return []
    condition = context.visible(literal("Patient"), hospital_stay.c.patient)
    where = [hospital_stay.c.organization == org, hospital_stay.c.state.in_(ADMITTED)]
    if patient is not None:
        where.append(hospital_stay.c.patient == patient)
    if condition is not None:
        where.append(condition)
    with db.connect() as con:
        rows = con.execute(
            select(hospital_stay).where(and_(*where)).order_by(hospital_stay.c.start.desc())
        ).all()
    found = [dict(row._mapping) for row in rows]
    for row in found:
        if context.writer is not None and row["patient"]:
            context.record_event(
                "read", patient=row["patient"], detail="citizens admitted (HospitalNotification)"
            )
    return found


def _shown(row: Any) -> Shown:
    body = orjson.loads(row.body)
    head = parts.first(body, "MessageHeader") or {}
    other = (
        head.get("sender") if row.direction == "in" else (head.get("destination") or [{}])[0].get("receiver")
    )
    party = parts.party_of(parts.resolve(body, other))
    person = parts.first(body, "Patient") or {}
    name = (person.get("name") or [{}])[0] if isinstance(person.get("name"), list) else {}
    citizen = " ".join([*name.get("given", []), str(name.get("family", ""))]).strip() if row.patient else None
    shown = Shown(
        sender_sor=row.sender_sor,
        direction=row.direction,
        header=row.header_id,
        kind=row.kind,
        code=row.code,
        state=row.state,
        ack_code=row.ack_code,
        created=row.created,
        happened=row.event_at or row.created,
        counterpart=party.name if party else row.sender_sor,
        citizen=citizen or None,
        patient=row.patient,
        thread=row.thread,
        episode=row.episode,
        attempts=row.attempts,
        problems=[line for line in (row.problems or "").splitlines() if line],
        body=body,
    )
    if row.kind == "care-communication" and row.state != "rejected":
        _identifier, shown.category, shown.topic, shown.said = cc.read(body)
    elif row.kind == "hospital-notification" and row.state != "rejected":
        try:
            shown.stay = notification.read(body)
        except notification.RuleBroken:
            shown.stay = None
    if row.direction == "out" and row.ack_body and row.ack_code != "ok":
        outcome = parts.first(orjson.loads(row.ack_body), "OperationOutcome") or {}
        shown.problems += [str((i.get("details") or {}).get("text", "")) for i in outcome.get("issue") or []]
    return shown


def _audit(context: AccessContext, shown: list[Shown], detail: str) -> None:
    if context.writer is None:
        return
    for patient in dict.fromkeys(s.patient for s in shown if s.patient):
        context.record_event("read", patient=patient, detail=detail)
