"""Break-the-glass (værdispring): a practitioner without a care relation, or past a citizen's block,
opens the citizen's record by stating a reason and the purpose (ETREAT). The grant runs for the time the
policy sets, is marked in the audit log and the citizen's log, and waits for an administrator's review,
whose decision is recorded too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from naer import clock
from naer.access import audit
from naer.access.policy import policy
from naer.access.principal import Principal
from naer.access.tables import grants
from naer.errors import UserError
from naer.store.errors import Forbidden, Invalid, NotFound
from naer.store.tables import resources

DECISIONS = ("accepted", "rejected")


@dataclass(frozen=True)
class Grant:
    id: str
    account: str
    patient: str
    reason: str
    purpose: str
    starts: datetime
    ends: datetime
    review: str
    reviewer: str | None
    review_note: str | None


def _grant(row: Any) -> Grant:
    return Grant(
        row.id,
        row.account,
        row.patient,
        row.reason,
        row.purpose,
        _aware(row.starts),
        _aware(row.ends),
        row.review,
        row.reviewer,
        row.review_note,
    )


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def open_record(
    db: Engine, principal: Principal, entry: audit.Entry, patient: str, reason: str, purpose: str
) -> Grant:
    """Grant ``principal`` the citizen's record for the policy's time; audited in the same transaction."""
    rules = policy()
    role = rules.roles[principal.role]
    if not role.break_glass:
        raise Forbidden(f"the role {role.name} may not break the glass")
    if purpose not in rules.glass_purposes:
        raise Invalid(f"the purpose must be one of {', '.join(rules.glass_purposes)}, not {purpose!r}")
    reason = " ".join(reason.split())
    if len(reason) < rules.reason_min_length:
        raise Invalid(f"state the reason in at least {rules.reason_min_length} characters")
    if len(reason) > 2000:
        raise Invalid("the reason is longer than 2,000 characters")
    now = clock.now()
    ends = now + timedelta(microseconds=rules.glass_duration)
    made: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "account": principal.account,
        "patient": patient,
        "reason": reason,
        "purpose": purpose,
        "starts": now,
        "ends": ends,
        "review": "pending",
    }
    with db.begin() as con:
        known = con.execute(
            select(resources.c.id).where(
                resources.c.resource_type == "Patient",
                resources.c.id == patient,
                resources.c.deleted.is_(False),
            )
        ).first()
        if known is None:
            raise NotFound(f"Patient/{patient} is not known")
        con.execute(insert(grants).values(**made))
        entry.patient = patient
        entry.relation = "break-the-glass"
        entry.purpose = purpose
        entry.detail = f"break-the-glass until {ends.isoformat()}: {reason}"
        audit.append(con, [entry])
    return Grant(**made, reviewer=None, review_note=None)


def listed(db: Engine, review: str | None = "pending", limit: int = 200) -> list[Grant]:
    query = select(grants).order_by(grants.c.starts.desc()).limit(limit)
    if review is not None:
        query = query.where(grants.c.review == review)
    with db.connect() as con:
        return [_grant(r) for r in con.execute(query)]


def decide(db: Engine, grant_id: str, reviewer: str, entry: audit.Entry, decision: str, note: str) -> Grant:
    """Record an administrator's review of a grant (audited in the same transaction)."""
    if decision not in DECISIONS:
        raise UserError(f"the decision is accepted or rejected, not {decision!r}")
    with db.begin() as con:
        row = con.execute(select(grants).where(grants.c.id == grant_id)).first()
        if row is None:
            raise UserError(f"no break-the-glass access {grant_id!r}")
        if row.review != "pending":
            raise UserError(f"{grant_id} was reviewed already ({row.review} by {row.reviewer})")
        con.execute(
            update(grants)
            .where(grants.c.id == grant_id)
            .values(review=decision, reviewer=reviewer, reviewed=clock.now(), review_note=note[:2000])
        )
        entry.patient = row.patient
        entry.detail = f"review of break-the-glass {grant_id} by {row.account}: {decision}. {note}"[:2000]
        audit.append(con, [entry])
        row = con.execute(select(grants).where(grants.c.id == grant_id)).first()
    return _grant(row)
