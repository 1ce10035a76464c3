"""The audit log: every access as a FHIR AuditEvent (after IHE's Basic Audit Log Patterns), in an
append-only table chained by hashes, so that ``naer audit verify`` finds an entry changed, removed,
inserted or moved.

Each entry's hash is SHA-256 over the previous entry's hash, its own sequence number and its JSON; the
head row (``audit_head``) holds the last sequence number and hash. Appending takes the head row's lock
(an UPDATE), so entries get gap-free numbers in commit order on SQLite and PostgreSQL alike.

Durability: a write's entries are appended inside the write's own transaction (they commit with it or
not at all). Reads, searches and exports are recorded by a writer thread that commits at least every
``FLUSH_SECONDS``: an answer may leave before its entry is on disk, and a crash (kill -9) loses at most
the entries of the last ``FLUSH_SECONDS`` (docs/access.md; tests/test_audit.py checks the bound).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.tables import audit_head, audit_log

log = logging.getLogger("naer.audit")

GENESIS = "0" * 64
FLUSH_SECONDS = 0.2
GATHER = 2000  # reads that make a batch big enough to write at once
DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NAER_AUDIT = "https://naer.example.org/fhir/CodeSystem/audit"
ACTION = {
    "read": "R",
    "vread": "R",
    "search": "E",
    "history": "R",
    "export": "E",
    "create": "C",
    "update": "U",
    "delete": "D",
    "import": "C",
    "login": "E",
    "logout": "E",
    "denied": "E",
    "break-glass": "E",
    "review": "U",
}
WRITES = ("create", "update", "delete", "import")
OUTCOME = {"success": "0", "minor": "4", "serious": "8"}


@dataclass
class Entry:
    """One audit entry before it is chained: what happened, to which citizen, by whom, and why."""

    action: str
    actor: str  # the account id ("anonymous" when none)
    who: str  # the asker as a reference (Practitioner/..., Patient/..., Device/...)
    display: str
    role: str
    organization: str | None
    address: str
    patient: str | None = None
    what: list[str] = field(default_factory=list)  # resource references
    query: str | None = None
    relation: str | None = None  # which relation allowed it (or "break-the-glass", "own", "all")
    purpose: str | None = None
    outcome: str = "success"
    detail: str | None = None
    recorded: datetime = field(default_factory=clock.now)

    def event(self) -> dict[str, Any]:
        """The entry as a FHIR R4 AuditEvent."""
        rest = self.action not in ("login", "logout", "denied", "break-glass", "review")
        kind = (
            {"system": REST, "code": "rest", "display": "RESTful Operation"}
            if rest
            else {"system": DCM, "code": "110114", "display": "User Authentication"}
            if self.action in ("login", "logout")
            else {"system": DCM, "code": "110113", "display": "Security Alert"}
        )
        agent: dict[str, Any] = {
            "type": {"coding": [{"system": ROLE_CLASS, "code": "AUT" if self.action in WRITES else "IRCP"}]},
            "who": {"reference": self.who, "display": self.display},
            "altId": self.actor,
            "requestor": True,
            "role": [{"coding": [{"system": NAER_AUDIT, "code": self.role}]}],
            "network": {"address": self.address, "type": "2"},
        }
        if self.organization:
            agent["location"] = {"reference": f"Organization/{self.organization}"}
        if self.purpose:
            agent["purposeOfUse"] = [{"coding": [{"system": PURPOSE, "code": self.purpose}]}]
        entities: list[dict[str, Any]] = []
        if self.patient:
            entities.append(
                {
                    "what": {"reference": f"Patient/{self.patient}"},
                    "type": {
                        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                        "code": "1",
                    },
                    "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
                }
            )
        for ref in self.what[:50]:
            entities.append({"what": {"reference": ref}, "role": {"system": OBJECT_ROLE, "code": "4"}})
        if self.query:
            entities.append(
                {
                    "type": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                    "description": self.query[:2000],
                }
            )
        details = []
        if self.relation:
            details.append({"type": "relation", "valueString": self.relation})
        if self.detail:
            details.append({"type": "detail", "valueString": self.detail[:2000]})
        if details:
            if not entities:
                entities.append({"role": {"system": OBJECT_ROLE, "code": "4"}})
            entities[0]["detail"] = details
        event: dict[str, Any] = {
            "resourceType": "AuditEvent",
            "type": kind,
            "subtype": [{"system": INTERACTION if rest else NAER_AUDIT, "code": self.action}],
            "action": ACTION.get(self.action, "E"),
            "recorded": self.recorded.isoformat().replace("+00:00", "Z"),
            "outcome": OUTCOME[self.outcome],
            "agent": [agent],
            "source": {"observer": {"display": "Nær"}, "type": [{"system": DCM, "code": "110150"}]},
            "entity": entities,
        }
        if self.relation == "break-the-glass" or self.action == "break-glass":
            event["meta"] = {"security": [{"system": PURPOSE, "code": "BTG", "display": "break the glass"}]}
        if self.outcome != "success" and self.detail:
            event["outcomeDesc"] = self.detail[:500]
        return event


def _digest(prev: str, seq: int, content: str) -> str:
    return hashlib.sha256(f"{prev}\n{seq}\n{content}".encode()).hexdigest()


def append(con: Connection, entries: Sequence[Entry]) -> None:
    """Chain ``entries`` onto the log inside the caller's transaction."""
    if not entries:
        return
    head = con.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(seq=audit_head.c.seq + len(entries))
        .returning(audit_head.c.seq, audit_head.c.hash)
    ).first()
    if head is None:
        raise RuntimeError("the audit log has no head row: run `naer db upgrade`")
    seq = int(head.seq) - len(entries)
    prev = str(head.hash)
    rows = []
    for entry in entries:
        seq += 1
        event = entry.event()
        event["id"] = f"{seq}"
        content = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
        digest = _digest(prev, seq, content)
        rows.append(
            {
                "seq": seq,
                "recorded": entry.recorded,
                "patient": entry.patient,
                "actor": entry.actor[:64],
                "action": entry.action,
                "content": content,
                "prev": prev,
                "hash": digest,
            }
        )
        prev = digest
    con.execute(insert(audit_log), rows)
    con.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=prev))


@dataclass
class Problem:
    seq: int
    message: str


def verify(db: Engine, batch: int = 5000) -> tuple[int, list[Problem]]:
    """Walk the chain; return how many entries it holds and each place where it breaks."""
    problems: list[Problem] = []
    expected, prev, count = 1, GENESIS, 0
    with db.connect() as con:
        rows = con.execution_options(stream_results=True, yield_per=batch).execute(
            select(audit_log.c.seq, audit_log.c.content, audit_log.c.prev, audit_log.c.hash).order_by(
                audit_log.c.seq
            )
        )
        for seq, content, stored_prev, digest in rows:
            count += 1
            if seq != expected:
                what = "missing" if seq > expected else "out of order"
                problems.append(Problem(seq, f"entry {expected} is {what} (found {seq} next)"))
            if stored_prev != prev:
                problems.append(
                    Problem(seq, "does not follow the entry before it (an entry removed or inserted)")
                )
            if _digest(stored_prev, seq, content) != digest:
                problems.append(Problem(seq, "was changed after it was written (its hash does not match)"))
            expected, prev = seq + 1, digest
        head = con.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    if head is None:
        problems.append(Problem(0, "the head row is missing"))
    elif int(head.seq) != expected - 1 or head.hash != prev:
        problems.append(
            Problem(int(head.seq), f"the head says {head.seq} entries, the log ends at {expected - 1}")
        )
    return count, problems


def head(db: Engine) -> tuple[int, str]:
    """The last sequence number and hash (write them down elsewhere to anchor the log)."""
    with db.connect() as con:
        row = con.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS)


def entries(
    db: Engine,
    patient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    actor: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """AuditEvents newest first (of one citizen, or all), and how many match."""
    from sqlalchemy import func

    conditions = []
    if patient is not None:
        conditions.append(audit_log.c.patient == patient)
    if actor is not None:
        conditions.append(audit_log.c.actor == actor)
    if since is not None:
        conditions.append(audit_log.c.recorded >= since)
    if until is not None:
        conditions.append(audit_log.c.recorded <= until)
    with db.connect() as con:
        total = con.execute(select(func.count()).select_from(audit_log).where(*conditions)).scalar() or 0
        rows = con.execute(
            select(audit_log.c.content)
            .where(*conditions)
            .order_by(audit_log.c.seq.desc())
            .limit(limit)
            .offset(offset)
        )
        found = [orjson.loads(r.content) for r in rows]
    return found, int(total)


def entry(db: Engine, seq: int) -> dict[str, Any] | None:
    """One entry: its AuditEvent, and the citizen and time it is filed under."""
    with db.connect() as con:
        row = con.execute(
            select(audit_log.c.content, audit_log.c.patient, audit_log.c.recorded).where(
                audit_log.c.seq == seq
            )
        ).first()
    if row is None:
        return None
    recorded = row.recorded if row.recorded.tzinfo else row.recorded.replace(tzinfo=UTC)
    return {"resource": orjson.loads(row.content), "_patient": row.patient, "_recorded": recorded}


def two_years_back() -> datetime:
    return clock.now() - timedelta(days=731)


Resolver = Any  # callable(con, list[Pending]) -> list[Entry]


@dataclass
class Pending:
    """A read to record: resolved into one entry per citizen by the writer thread."""

    entry: Entry
    keys: list[tuple[str, str]]
    context: Any  # the AccessContext (to name the relation of each citizen)


class Writer:
    """Records reads in the background, committing at least every FLUSH_SECONDS."""

    def __init__(self, db: Engine, resolve: Resolver) -> None:
        self.db = db
        self.resolve = resolve
        self.queue: queue.Queue[Pending | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=f"audit-{uuid.uuid4().hex[:6]}", daemon=True)
        self.idle = threading.Event()
        self.idle.set()
        self.thread.start()

    def put(self, item: Pending) -> None:
        self.idle.clear()
        self.queue.put(item)

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                self.idle.set()
                continue
            if first is None:
                self.idle.set()
                return
            # Gather what else comes for a moment (at most half the bound): a busy server then writes a
            # few large batches a second instead of one transaction per read.
            batch, stop = self._gather(first, time.monotonic() + FLUSH_SECONDS / 2)
            try:
                with self.db.begin() as con:
                    append(con, self.resolve(con, batch))
            except Exception:  # the log must go on; the failure is logged loudly
                log.exception("could not write %d audit entries", len(batch))
            if stop:
                self.idle.set()
                return
            if self.queue.empty():
                self.idle.set()

    def _gather(self, first: Pending, until: float) -> tuple[list[Pending], bool]:
        """``first`` and what else arrives before ``until`` (waiting on the queue, not polling it), up to
        GATHER reads; and whether the writer was told to stop."""
        batch = [first]
        while len(batch) < GATHER:
            left = until - time.monotonic()
            try:
                item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every entry put so far is committed (tests, shutdown)."""
        deadline = threading.Event()
        waited = 0.0
        while not (self.idle.is_set() and self.queue.empty()) and waited < timeout:
            deadline.wait(0.01)
            waited += 0.01

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=10)


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    bucket: list[Any] = []
    for item in items:
        bucket.append(item)
        if len(bucket) >= size:
            yield bucket
            bucket = []
    if bucket:
        yield bucket


def record_job(db: Engine, action: str, job: str, detail: str) -> None:
    """One entry for a job of the platform itself (``naer load``, ``naer export``): it touches every
    citizen, so it names none, and says what it did."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    entry = Entry(
        action=action,
        actor=job,
        who=f"Device/{job.replace(' ', '-')}",
        display=f"{job} (run by {user})",
        role="system",
        organization=None,
        address="local",
        detail=detail,
    )
    with db.begin() as con:
        append(con, [entry])
