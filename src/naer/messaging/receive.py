"""The inbox: take a message from outside, check it, apply it and answer it — exactly once.

MedCom's reliable messaging, as Nær keeps it:

- A message received again (the same MessageHeader id, whatever its Bundle id) changes nothing and is
  answered with the very acknowledgement it got the first time (kept with the message).
- A Bundle id that comes back with another MessageHeader id is an error (a negative acknowledgement).
- The message, its effect and its acknowledgement commit in one transaction: a crash before the commit
  leaves nothing (the sender sends again and the message is applied then); a crash after it leaves the
  acknowledgement to be given again to the retransmission.
- Two deliveries of one message at the same time: the second's insert meets the first's key and it
  answers with the first's acknowledgement.
- A HospitalNotification sets the stay by the hospital's own time of the event, so that notifications
  arriving out of order leave the state of the latest.
- A message about a citizen the receiving unit does not serve is acknowledged and kept, but not shown.
- An invalid message changes nothing and is answered with a fatal-error acknowledgement that names
  each problem; an acknowledgement is never acknowledged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from naer import clock
from naer.messaging import acknowledgement as ack
from naer.messaging import carecommunication, directory, notification, parts, shape
from naer.messaging.acknowledgement import printable
from naer.messaging.parse import Unreadable, read
from naer.messaging.tables import hospital_stay, message, message_bundle
from naer.messaging.validate import Problem, validate

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
FUTURE = timedelta(days=1)  # a sender's clock may run ahead; an event dated later than this is refused
# The profiles a message of each event must meet, whatever it claims in meta.profile: its Bundle's and
# its MessageHeader's (its other resources are checked against the profiles these refer them to).
PROFILES = {
    notification.EVENT: (notification.MESSAGE, notification.HEADER),
    carecommunication.EVENT: (carecommunication.MESSAGE, carecommunication.HEADER),
    ack.EVENT: (ack.MESSAGE, ack.HEADER),
}
EVENTS = {
    notification.EVENT: "hospital-notification",
    carecommunication.EVENT: "care-communication",
    ack.EVENT: "acknowledgement",
}
# The acknowledgement's code for each of the validator's rules (MedCom's acknowledgement issue details).
ISSUE_CODES = {
    "binding": ("code-invalid", "MSG_VALUESET_VALUE_UNKNOWN"),
    "type": ("structure", "MSG_Datatype_Wrong"),
    "structure": ("structure", "MSG_BAD_SYNTAX"),
    "reference": ("not-found", "MSG_NO_EXIST"),
    "cardinality": ("required", "MSG_RESOURCE_REQUIRED"),
}
log = logging.getLogger(__name__)
Record = Callable[[str, str | None, str], None]  # (action, patient, detail): the audit's hook


@dataclass
class Receipt:
    """What became of a message, and the answer to give. ``acknowledgement`` is None when there is no one
    to answer (an acknowledgement, or a message too broken to name its sender)."""

    outcome: str  # applied, not-served, rejected, duplicate, bundle-reused, acknowledgement, unreadable
    acknowledgement: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    header: str | None = None
    patient: str | None = None  # the citizen's Patient id, when the message is about one Nær knows

    @property
    def code(self) -> str | None:
        if self.acknowledgement is None:
            return None
        found = ack.answer_of(self.acknowledgement)
        return found[1] if found else None

    def line(self) -> str:
        """One line for the command line."""
        code = f" ({self.code})" if self.code else ""
        why = f": {self.problems[0]}" if self.problems else ""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.header or '-'} {self.outcome}{code}{why}{more}"


def receive(
    db: Engine,
    raw: bytes,
    content_type: str | None = None,
    now: datetime | None = None,
    record: Record | None = None,
) -> Receipt:
    """Take one message (JSON or XML), apply it once, and return the acknowledgement to send back."""
    now = now or clock.now()
    try:
        found = read(raw, content_type)
    except Unreadable as exc:
        return Receipt(
            "unreadable", None, [printable(exc.reason)], exc.header if _is_id(exc.header) else None
        )
    head = parts.header_of(found)
    header_id, bundle_id = parts.obj(head).get("id"), found.get("id")
    if not _is_id(header_id) or not _is_id(bundle_id):
        what = "MessageHeader (the first entry)" if not _is_id(header_id) else "Bundle"
        return Receipt(
            "unreadable", None, [f"the {what} has no valid id (a FHIR id): it cannot be acknowledged"]
        )
    assert isinstance(header_id, str) and isinstance(bundle_id, str)
    problems = shape.problems(found)
    if ack.is_acknowledgement(found):  # never answered, whatever it holds
        if problems:
            log.warning("acknowledgement %s ignored: %s", header_id, printable(str(problems[0])))
            why = [printable(str(p)) for p in problems[:5]]
            return Receipt("acknowledgement (invalid: ignored)", None, why, header_id)
        return _acknowledged(db, found, header_id, now)
    sender = parts.party_of(parts.resolve(found, parts.obj(head).get("sender")))
    receiver = parts.party_of(parts.resolve(found, _primary_receiver(parts.obj(head))))
    if receiver is not None and not receiver.gln:  # (we answer as the receiver: its GLN is ours)
        receiver = parts.Party(receiver.sor, parts.synthetic_gln(receiver.sor), receiver.name)
    if not problems:  # validated before the transaction: it holds no connection while it thinks
        profiles = PROFILES.get(parts.event_of(found))
        problems = validate(found, *profiles).errors if profiles else validate(found).errors
    key = sender.sor if sender is not None else ""
    receipt: Receipt | None = None
    for _attempt in range(3):  # a concurrent delivery of the same message may win the insert: ask again
        try:
            with db.begin() as con:
                receipt = _earlier(con, key, header_id, bundle_id)
                if receipt is None:
                    if sender is None or receiver is None or not sender.gln:
                        lines = [str(p) for p in problems] or [
                            "the message names no sender or receiver by SOR code, or no sender GLN to "
                            "answer to"
                        ]
                        return Receipt(
                            "unreadable", None, [printable(line) for line in lines[:20]], header_id
                        )
                    receipt = _apply(con, found, header_id, bundle_id, problems, sender, receiver, now)
            break
        except IntegrityError:
            receipt = None
    if receipt is None:
        raise RuntimeError(f"message {header_id} could neither be stored nor found after three attempts")
    if receipt.outcome == "bundle-reused" and sender is not None and receiver is not None:
        issue = ack.Issue(receipt.problems[0], "duplicate", "MSG_DUPLICATE_ID")
        receipt.acknowledgement = ack.build(found, "fatal-error", [issue], receiver, sender, now)
    if record is not None:
        record(
            "message-received", receipt.patient, f"{EVENTS.get(parts.event_of(found), '?')} {receipt.outcome}"
        )
    return receipt


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and FHIR_ID.fullmatch(value) is not None


def _primary_receiver(head: dict[str, Any]) -> Any:
    for destination in parts.items(head.get("destination")):
        uses = [
            parts.obj(parts.obj(ext).get("valueCoding")).get("code")
            for ext in parts.items(parts.obj(destination).get("extension"))
        ]
        if "primary" in uses or not uses:
            return parts.obj(destination).get("receiver")
    return None


def _earlier(con: Connection, sender: str, header_id: str, bundle_id: str) -> Receipt | None:
    """The answer already given to this sender's message, or the refusal of a Bundle id it reused; None
    for a message not seen before."""
    row = con.execute(
        select(message.c.ack_body, message.c.patient).where(
            message.c.direction == "in", message.c.sender_sor == sender, message.c.header_id == header_id
        )
    ).first()
    holder = con.execute(
        select(message_bundle.c.header_id).where(
            message_bundle.c.sender_sor == sender, message_bundle.c.bundle_id == bundle_id
        )
    ).scalar()
    if holder is not None and holder != header_id:
        why = f"Bundle id {bundle_id} came before with MessageHeader {holder}: a new message, a new id"
        return Receipt("bundle-reused", None, [why], header_id)
    if row is None:
        return None
    if holder is None:  # a retransmission in a new Bundle: its id is taken too
        con.execute(
            insert(message_bundle).values(sender_sor=sender, bundle_id=bundle_id, header_id=header_id)
        )
    answer = orjson.loads(row.ack_body) if row.ack_body else None
    return Receipt("duplicate", answer, [], header_id, row.patient)


def _issues(problems: list[Problem]) -> list[ack.Issue]:
    issues = []
    for problem in problems[:50]:
        code, medcom = ISSUE_CODES.get(problem.rule, ("invariant", "MSG_BAD_FORMAT"))
        issues.append(ack.Issue(text=str(problem), code=code, medcom=medcom, location=problem.path or None))
    return issues


def _apply(
    con: Connection,
    found: dict[str, Any],
    header_id: str,
    bundle_id: str,
    problems: list[Problem],
    sender: parts.Party,
    receiver: parts.Party,
    now: datetime,
) -> Receipt:
    kind = EVENTS.get(parts.event_of(found), "unknown")
    unit = directory.unit(con, receiver.sor)
    issues: list[ack.Issue] = []
    state, code, patient, thread, episode, event_at = "rejected", "?", None, None, None, None
    if problems:
        issues = _issues(problems)
    elif unit is None:
        issues = [
            ack.Issue(
                f"no organisation with SOR code {receiver.sor} receives messages here",
                "not-found",
                "MSG_Receiver_Identifier_UNKNOWN",
            )
        ]
    elif kind == "hospital-notification":
        try:
            notice = notification.read(found)
        except notification.RuleBroken as exc:
            issues = [ack.Issue(str(exc), "business-rule", "MSG_BAD_FORMAT")]
        else:
            code, episode = notice.code, notice.episode
            moment = _moment(notice.event_at) or now.astimezone(UTC)
            event_at = moment
            issues = _unread_moment(notice.event_at) or _when_problem(moment, now)
            if not issues:
                patient = _citizen(con, found)
                if patient is not None and directory.serves(con, unit, patient, now):
                    _stay(con, unit.id, sender, found, notice, patient, moment, header_id)
                    state = "applied"
                else:
                    state = "not-served"
    elif kind == "care-communication":
        thread, _category, _topic, _said = carecommunication.read(found)
        provenance = parts.current_provenance(found)
        activity = parts.activity_of(provenance) or ""
        code = activity.removesuffix("-message") or "?"
        occurred = str(parts.obj(provenance).get("occurredDateTime", ""))
        event_at = _moment(occurred) or now.astimezone(UTC)
        issues = _unread_moment(occurred) or _when_problem(event_at, now)
        if not issues:
            patient = _citizen(con, found)
            served = patient is not None and directory.serves(con, unit, patient, now)
            state = "applied" if served else "not-served"
    else:
        issues = [
            ack.Issue(
                f"{parts.event_of(found)[:64] or 'this message type'} is not received here",
                "not-supported",
                "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE",
            )
        ]
    answer = ack.build(found, "fatal-error" if issues else "ok", issues, receiver, sender, now)
    con.execute(
        insert(message).values(
            direction="in",
            header_id=header_id,
            bundle_id=bundle_id,
            kind=kind,
            code=code[:24],
            sender_sor=sender.sor[:32],
            receiver_sor=receiver.sor[:32],
            organization=unit.id if unit else None,
            patient=patient,
            thread=(thread or None) and thread[:128],
            episode=(episode or None) and episode[:128],
            state=state,
            body=orjson.dumps(found).decode(),
            ack_code=answer_code(answer),
            ack_body=orjson.dumps(answer).decode(),
            problems="\n".join(printable(issue.text) for issue in issues) or None,
            created=now.astimezone(UTC),
            event_at=event_at,
            attempts=0,
        )
    )
    con.execute(
        insert(message_bundle).values(sender_sor=sender.sor[:32], bundle_id=bundle_id, header_id=header_id)
    )
    return Receipt(state, answer, [printable(issue.text) for issue in issues], header_id, patient)


def answer_code(answer: dict[str, Any]) -> str | None:
    found = ack.answer_of(answer)
    return found[1] if found else None


def _citizen(con: Connection, found: dict[str, Any]) -> str | None:  # (a validated message)
    identity = parts.identity_of(parts.first(found, "Patient"))
    return directory.citizen(con, identity[1], identity[0]) if identity else None


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
        # Kept in UTC: SQLite compares the stored text, so every time must have the same offset.
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # (year 1 or 9999 with an offset leaves the calendar)
        return None


def _unread_moment(text: str | None) -> list[ack.Issue]:
    """An event time that is given but cannot be placed to the minute on the calendar (2099, 2999-01,
    9999-12-31T23:59:59-01:00) is refused, not taken as now."""
    if text and _moment(text) is None:
        return [ack.Issue(f"the event time {text[:40]!r} is not a moment on the calendar", "invalid",
                          "MSG_DATE_FORMAT")]  # fmt: skip
    return []


def _when_problem(event_at: datetime, now: datetime) -> list[ack.Issue]:
    """A message about an event after tomorrow is refused: the stay it sets could never change again."""
    if event_at > now.astimezone(UTC) + FUTURE:
        return [
            ack.Issue(
                f"the event is dated {event_at.isoformat()}, after the receiver's tomorrow",
                "invalid",
                "MSG_DATE_FORMAT",
            )
        ]
    if event_at.year < 1900:
        return [
            ack.Issue(f"the event is dated {event_at.isoformat()}, before 1900", "invalid", "MSG_DATE_FORMAT")
        ]
    return []


def _stay(
    con: Connection,
    organization: str,
    sender: parts.Party,
    found: dict[str, Any],
    notice: notification.Notice,
    patient: str,
    event_at: datetime,
    header_id: str,
) -> None:
    """Set the stay to what this notification says, unless a later event has set it already."""
    kind = notification.kinds()[notice.code]
    person = parts.first(found, "Patient") or {}
    name = (person.get("name") or [{}])[0] if isinstance(person.get("name"), list) else {}
    values = {
        "organization": organization,
        "hospital_sor": sender.sor[:32],
        "episode": notice.episode[:128] or header_id,
        "patient": patient,
        "cpr": (parts.cpr_of(person) or "")[:16],
        "name": " ".join([*name.get("given", []), str(name.get("family", ""))]).strip()[:200],
        "hospital": sender.name[:200],
        "klass": notice.klass[:8],
        "code": notice.code,
        "state": notification.state_after(kind, notice.klass),
        "start": (notice.start or "")[:40] or None,
        "end": (notice.end or "")[:40] or None,
        "event_at": event_at,
        "header_id": header_id,
    }
    dialect = postgresql if con.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(hospital_stay).values(**values)
    later = {
        key: statement.excluded[key]
        for key in values
        if key not in ("organization", "hospital_sor", "episode")
    }
    con.execute(
        statement.on_conflict_do_update(
            index_elements=["organization", "hospital_sor", "episode"],
            set_=later,
            where=hospital_stay.c.event_at <= statement.excluded.event_at,
        )
    )


def _acknowledged(db: Engine, found: dict[str, Any], header_id: str, now: datetime) -> Receipt:
    """An acknowledgement of a message Nær sent: the sent message's state follows it, if the
    acknowledgement is valid and comes from that message's receiver. Never answered."""
    problems = validate(found, ack.MESSAGE, ack.HEADER).errors
    answer = ack.answer_of(found)
    sender = parts.party_of(parts.resolve(found, parts.obj(parts.header_of(found)).get("sender")))
    if problems or answer is None or sender is None or answer[1] not in ack.CODES:
        why = [printable(str(p)) for p in problems[:5]] or [
            "the acknowledgement names no message or no sender"
        ]
        log.warning("acknowledgement %s ignored: %s", header_id, why[0])
        return Receipt("acknowledgement (invalid: ignored)", None, why, header_id)
    original, code = answer
    state = "acknowledged" if code == "ok" else "negative"
    with db.begin() as con:
        changed = con.execute(
            update(message)
            .where(
                message.c.direction == "out",
                message.c.header_id == original,
                message.c.receiver_sor == sender.sor,  # only the receiver answers for it
                message.c.acked_at.is_(None),
            )
            .values(state=state, ack_code=code, ack_body=orjson.dumps(found).decode(), acked_at=now)
        ).rowcount
    outcome = "acknowledgement" if changed else "acknowledgement (of nothing waiting)"
    return Receipt(outcome, None, [], header_id)
