"""The outbox: messages Nær sends, stored with the event that caused them and sent after.

- ``put`` stores a message in the caller's transaction (state ``pending``): the message commits or rolls
  back with its cause (an Encounter's change, a clinician's CareCommunication).
- ``send_due`` sends what is due: a pending message now, and a sent one again after 30 minutes without an
  acknowledgement, in a new Bundle with the same MessageHeader id (MedCom's reliable messaging), at most
  twice; after that it waits for a person (state ``attention``, shown on the messages page).
- Where the receiving unit is in this Nær, the message goes to its inbox directly (``receive``) and its
  acknowledgement comes back at once. Elsewhere it is written as a file to NAER_MESSAGING_OUTBOX (the
  folder a VANS gateway picks up); its acknowledgement comes back through the inbox like any message.

States: pending → sent → acknowledged | negative | attention. ``negative`` holds the acknowledgement's
OperationOutcome for a person to read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from naer import clock
from naer.messaging import acknowledgement as ack
from naer.messaging import directory, parts
from naer.messaging.tables import message

RESEND_AFTER = timedelta(minutes=30)
RESENDS = 2
BATCH = 200

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    header: str
    state: str
    attempts: int


def put(
    con: Connection,
    found: dict[str, Any],
    kind: str,
    code: str,
    organization: str,
    patient: str | None,
    thread: str | None = None,
    episode: str | None = None,
    now: datetime | None = None,
) -> str:
    """Store ``found`` (a message Bundle Nær built) to be sent; returns its MessageHeader id."""
    now = (now or clock.now()).astimezone(UTC)
    head = parts.first(found, "MessageHeader") or {}
    sender = parts.party_of(parts.resolve(found, head.get("sender")))
    receiver = parts.party_of(parts.resolve(found, (head.get("destination") or [{}])[0].get("receiver")))
    if sender is None or receiver is None:
        raise ValueError("a message to send names its sender and receiver by SOR code")
    header = str(head["id"])
    con.execute(
        insert(message).values(
            direction="out",
            header_id=header,
            bundle_id=str(found["id"]),
            kind=kind,
            code=code[:24],
            sender_sor=sender.sor,
            receiver_sor=receiver.sor,
            organization=organization,
            patient=patient,
            thread=thread,
            episode=episode,
            state="pending",
            body=orjson.dumps(found).decode(),
            created=now,
            event_at=now,
            attempts=0,
            next_attempt=now,
        )
    )
    return header


def send_due(db: Engine, now: datetime | None = None, folder: Path | None = None) -> list[Sent]:
    """Send every message that is due; returns what became of each."""
    now = (now or clock.now()).astimezone(UTC)
    with db.connect() as con:
        rows = con.execute(
            select(message)
            .where(
                message.c.direction == "out",
                or_(
                    and_(
                        message.c.state == "pending",
                        or_(message.c.next_attempt.is_(None), message.c.next_attempt <= now),
                    ),
                    and_(message.c.state == "sent", message.c.next_attempt <= now),
                ),
            )
            .order_by(message.c.created)
            .limit(BATCH)
        ).all()
    done = []
    for row in rows:
        done.append(_send(db, row, now, folder))
    return done


def _send(db: Engine, row: Any, now: datetime, folder: Path | None) -> Sent:
    if row.state == "sent" and row.attempts > RESENDS:
        with db.begin() as con:
            con.execute(
                update(message)
                .where(
                    message.c.direction == "out",
                    message.c.header_id == row.header_id,
                    message.c.state == "sent",
                )
                .values(state="attention", next_attempt=None)
            )
        return Sent(row.header_id, "attention", row.attempts)
    found = orjson.loads(row.body)
    if row.attempts > 0 or row.sent_at is not None:
        found["id"] = parts.new_id()  # a retransmission: a new Bundle, the same MessageHeader
    raw = orjson.dumps(found)
    with db.connect() as con:
        local = directory.unit(con, row.receiver_sor) is not None
    answer: dict[str, Any] | None = None
    if local:
        from naer.messaging.receive import receive  # (the inbox imports the outbox's neighbours)

        answer = receive(db, raw, now=now).acknowledgement
    elif folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{found['id']}.json").write_bytes(raw)
        except OSError as exc:  # the transport is down: this one waits, the others still go
            log.error("message %s not sent: %s cannot be written (%s)", row.header_id, folder, exc)
            return _postpone(db, row, now)
    else:
        return _postpone(db, row, now)  # no route yet: stays pending, shown as such
    state, code = "sent", None
    if answer is not None:
        code = (ack.answer_of(answer) or ("", "fatal-error"))[1]
        state = "acknowledged" if code == "ok" else "negative"
    with db.begin() as con:
        con.execute(
            update(message)
            .where(message.c.direction == "out", message.c.header_id == row.header_id)
            .values(
                state=state,
                bundle_id=str(found["id"]),
                attempts=row.attempts + 1,
                sent_at=now,
                next_attempt=None if answer is not None else now + RESEND_AFTER,
                ack_code=code,
                ack_body=orjson.dumps(answer).decode() if answer is not None else None,
                acked_at=now if answer is not None else None,
            )
        )
    return Sent(row.header_id, state, row.attempts + 1)


def _postpone(db: Engine, row: Any, now: datetime) -> Sent:
    """A message that cannot go now waits (pending) and is tried again later, out of the others' way."""
    with db.begin() as con:
        con.execute(
            update(message)
            .where(message.c.direction == "out", message.c.header_id == row.header_id)
            .values(next_attempt=now + RESEND_AFTER)
        )
    return Sent(row.header_id, row.state, row.attempts)


def retry(db: Engine, header: str, now: datetime | None = None) -> bool:
    """A person sends a message that waits for attention once more (it starts its retries again)."""
    now = (now or clock.now()).astimezone(UTC)
    with db.begin() as con:
        changed = con.execute(
            update(message)
            .where(
                message.c.direction == "out",
                message.c.header_id == header,
                message.c.state.in_(("attention", "negative")),
            )
            .values(state="pending", attempts=0, next_attempt=now, acked_at=None, ack_code=None)
        ).rowcount
    return bool(changed)
