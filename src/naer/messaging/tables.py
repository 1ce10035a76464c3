"""The messaging tables, in the store's database, so that a message, its effect and its acknowledgement
commit in one transaction (MedCom's reliable messaging: exactly once).

- ``message``: every message sent or received, once per direction, sender and MessageHeader id
  (MedCom's ids are UUIDs; keyed with the sender, one sender cannot take another's message by reusing
  its id). A received message keeps the acknowledgement it was answered with, so that the same message
  delivered again is answered with the very same acknowledgement; a sent one keeps its state until
  acknowledged.
- ``message_bundle``: the Bundle ids a received message came in, per sender. A retransmission has a new
  Bundle id and the same MessageHeader id; a Bundle id that comes back with another MessageHeader id is
  an error.
- ``hospital_stay``: the municipality's list of admitted citizens, one row per receiving unit, hospital
  and episode of care, set by the latest HospitalNotification by the hospital's own time of the event
  (so that notifications that arrive out of order leave the right state).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from naer.store.tables import metadata

message = Table(
    "message",
    metadata,
    Column("direction", String(3), nullable=False),  # in, out
    Column("header_id", String(64), nullable=False),  # MessageHeader.id
    Column("bundle_id", String(64), nullable=False),  # of the first (or, sent: the latest) Bundle
    Column("kind", String(32), nullable=False),  # hospital-notification, care-communication, acknowledgement
    Column("code", String(24), nullable=False),  # STIN ... / new, reply, forward / ok ...
    Column("sender_sor", String(32), nullable=False),
    Column("receiver_sor", String(32), nullable=False),
    Column("organization", String(64), nullable=True),  # the Nær organisation whose message it is
    Column("patient", String(64), nullable=True),  # the citizen's Patient id in the store, when known
    Column("thread", String(128), nullable=True),  # a CareCommunication's Communication identifier
    Column("episode", String(128), nullable=True),  # a HospitalNotification's episode of care
    Column("state", String(24), nullable=False),  # in: applied, rejected, not-served; out: see outbox.py
    Column("body", Text, nullable=False),  # the message Bundle (JSON)
    Column("ack_code", String(24), nullable=True),
    Column("ack_body", Text, nullable=True),  # in: the answer given; out: the answer received
    Column("problems", Text, nullable=True),  # why it was refused, one line each
    Column("created", DateTime(timezone=True), nullable=False),
    Column("event_at", DateTime(timezone=True), nullable=True),  # the sender's time of the event
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("acked_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("direction", "sender_sor", "header_id", name="pk_message"),
)
Index("ix_message_organization", message.c.organization, message.c.direction, message.c.created)
Index("ix_message_header", message.c.header_id)
Index("ix_message_thread", message.c.thread)
Index("ix_message_patient", message.c.patient)
Index("ix_message_due", message.c.direction, message.c.state, message.c.next_attempt)

message_bundle = Table(
    "message_bundle",
    metadata,
    Column("sender_sor", String(32), nullable=False),
    Column("bundle_id", String(64), nullable=False),
    Column("header_id", String(64), nullable=False),
    PrimaryKeyConstraint("sender_sor", "bundle_id", name="pk_message_bundle"),
)

hospital_stay = Table(
    "hospital_stay",
    metadata,
    Column("organization", String(64), nullable=False),  # the receiving municipal unit (Nær)
    Column("hospital_sor", String(32), nullable=False),
    Column("episode", String(128), nullable=False),
    Column("patient", String(64), nullable=True),
    Column("cpr", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("hospital", Text, nullable=False),
    Column("klass", String(8), nullable=False),  # IMP, EMER
    Column("code", String(16), nullable=False),  # the notification that set the state
    Column("state", String(16), nullable=False),  # emergency, admitted, leave, finished, deceased, cancelled
    Column("start", String(40), nullable=True),
    Column("end", String(40), nullable=True),
    Column("event_at", DateTime(timezone=True), nullable=False),
    Column("header_id", String(64), nullable=False),
    PrimaryKeyConstraint("organization", "hospital_sor", "episode", name="pk_hospital_stay"),
)
Index("ix_hospital_stay_state", hospital_stay.c.organization, hospital_stay.c.state)
