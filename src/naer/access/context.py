"""The request context of a signed-in asker: the store asks it what the asker may do and see
(store/context.py), and it answers from the policy (policy.yaml), the asker's scopes, and the care
relations and blocks in the index (conditions.py), recording every access in the audit log (audit.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select
from sqlalchemy.engine import Connection

from naer import clock
from naer.access import audit, conditions
from naer.access.policy import Policy, policy
from naer.access.principal import Principal
from naer.store import citizens, relations
from naer.store.compartment import compartment_types
from naer.store.context import Action, RequestContext
from naer.store.errors import Forbidden
from naer.store.resources import planned_each_time
from naer.store.resources import reader as resources_reader
from naer.store.tables import resources

LETTER: dict[str, str] = {
    "read": "r",
    "vread": "r",
    "search": "s",
    "history": "s",
    "export": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
    "import": "c",
}


RELATIONS_AT_ONCE = 64  # citizens whose relations the audit writer asks for in one query


def _record_types() -> frozenset[str]:
    return frozenset(compartment_types())


@dataclass
class AccessContext(RequestContext):
    """What one request of ``principal`` may do, decided at ``moment`` (one clock for the request)."""

    principal: Principal
    db: Engine | None = None
    writer: audit.Writer | None = None
    rules: Policy = field(default_factory=policy)
    moment: datetime = field(default_factory=clock.now)
    listed: bool = False  # decide the policy once for the request: see listing()
    _citizens: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def actor(self) -> str:  # type: ignore[override]
        return self.principal.account

    # -- what the store asks -------------------------------------------------------------------------

    def permit(self, action: Action, resource_type: str | None) -> None:
        role = self.rules.roles[self.principal.role]
        letter = LETTER[action]
        if action == "import" and not role.bulk:
            self._refuse(action, resource_type, "bulk import is for system clients")
        if resource_type is None or resource_type in _record_types():
            allowed = letter in role.interactions and role.records != "none"
        else:
            allowed = letter in role.directory
        if not allowed:
            self._refuse(
                action, resource_type, f"the role {role.name} may not {action} {resource_type or 'all types'}"
            )
        if not self.principal.scopes.allows(letter, resource_type):
            scope = f"{resource_type or '*'}.{letter}"
            self._refuse(action, resource_type, f"the token's scopes do not allow {scope}")

    def _refuse(self, action: str, resource_type: str | None, why: str) -> None:
        self.record_event("denied", outcome="minor", detail=f"{action} {resource_type or ''}: {why}".strip())
        raise Forbidden(f"{why}")

    def listing(self) -> AccessContext:
        """This asker, deciding the policy once for the whole request: the citizens the asker may see are
        listed first (conditions.permitted_ids, one query from the asker's side) and each query then
        tests its rows' citizens against that list, instead of deciding the policy per row. For reads
        that touch thousands of rows (an inbox of 10,000 Tasks); the same rows either way. The list is
        read on a connection of its own, so it is for reads only: a write's relations are decided in
        the write's own transaction, as before."""
        return replace(self, listed=True, _citizens=None)

    def about(self, patient: str) -> AccessContext:
        """This asker, reading one citizen's records: the policy decided once, for that citizen, and each
        query's rows tested against that one decision (a row that also belongs to another citizen is left
        out, never shown on this citizen's account). For a page of one citizen's whole course."""
        if self.db is None:
            raise RuntimeError("a listing context needs the database")
        role = self.rules.roles[self.principal.role]
        allowed = True
        if not (role.records == "all" and not self.principal.scopes.patient_context):
            condition = conditions.permitted(self.rules, self.principal, conditions.PATIENT, self.moment)
            with resources_reader(self.db).connect() as con:
                allowed = bool(con.execute(select(condition), {"naer_patient": patient}).scalar())
        return replace(self, listed=True, _citizens=(patient,) if allowed else ())

    def citizens(self) -> tuple[str, ...]:
        """The ids of the citizens the asker may see at the request's moment (listed once)."""
        if self._citizens is None:
            if self.db is None:
                raise RuntimeError("a listing context needs the database")
            with resources_reader(self.db).connect() as con, planned_each_time(con):
                # From the kept care relations when they are this policy's (store/relations.py).
                kept = relations.current(con, self.rules)
                query = conditions.permitted_ids(self.rules, self.principal, self.moment, kept)
                self._citizens = tuple(
                    sorted({str(r) for r in con.execute(query).scalars() if r is not None})
                )
        return self._citizens

    def visible(self, type_column: Any, id_column: Any, many: bool = False) -> ColumnElement[bool] | None:
        role = self.rules.roles[self.principal.role]
        sees_all = role.records == "all" and not self.principal.scopes.patient_context
        condition: ColumnElement[bool] | None
        if self.listed and self.db is not None and not sees_all:
            narrowed = role.records in ("own", "none") or self.principal.scopes.patient_context
            condition = conditions.among_listed(
                type_column,
                id_column,
                self.citizens(),
                self.db.dialect.name,
                role.records if narrowed else None,
            )
        else:
            condition = conditions.visible(
                self.rules, self.principal, type_column, id_column, self.moment, many
            )
        granular = self._granular(type_column, id_column)
        if granular is None:
            return condition
        return granular if condition is None else and_(condition, granular)

    def _granular(self, type_column: Any, id_column: Any) -> ColumnElement[bool] | None:
        """Granular scopes (Observation.rs?category=laboratory): a type some scopes allow only with a
        query is limited to the resources the query finds; where the table is not the resource table
        (history, chains) such a type is left out."""
        from naer.store.search.query import parse

        limited = {
            s.resource_type for s in self.principal.scopes.granted if s.query and s.resource_type != "*"
        }
        parts: list[ColumnElement[bool]] = []
        for kind in sorted(limited):
            queries = self.principal.scopes.filters("r", kind) or self.principal.scopes.filters("s", kind)
            if queries is None:
                continue
            if type_column is not resources.c.resource_type:
                parts.append(type_column != kind)
                continue
            options = [and_(*parse(kind, list(q)).where) for q in queries]
            parts.append(or_(type_column != kind, or_(*options)))
        return and_(*parts) if parts else None

    def writable(self, con: Connection, action: Action, resource_type: str, patients: set[str]) -> None:
        role = self.rules.roles[self.principal.role]
        if role.records == "all" and not self.principal.scopes.patient_context:
            return
        for patient in sorted(patients):
            allowed = con.execute(
                select(conditions.permitted(self.rules, self.principal, conditions.PATIENT, self.moment)),
                {"naer_patient": patient},
            ).scalar()
            if not allowed:
                self._refuse(
                    action,
                    resource_type,
                    f"you have no care relation with the citizen this {resource_type} is about",
                )

    def written(
        self, con: Connection, action: Action, resource_type: str, rid: str, version: int, patients: set[str]
    ) -> None:
        ref = f"{resource_type}/{rid}/_history/{version}"
        entries = [
            self.entry(action, patient=p, what=[ref], relation=self._relation(con, p))
            for p in sorted(patients)
        ] or [self.entry(action, what=[ref])]
        audit.append(con, entries)

    def accessed(self, action: Action, keys: Sequence[tuple[str, str]], query: str | None = None) -> None:
        if not keys or self.writer is None:
            return
        self.writer.put(audit.Pending(self.entry(action, query=query), list(keys), self))

    # -- audit helpers -------------------------------------------------------------------------------

    def _relations(self, con: Connection, patients: set[str]) -> dict[str, str]:
        """The relation by which the asker saw each citizen, in one query (none for a citizen who is
        not in the store)."""
        role = self.rules.roles[self.principal.role]
        if role.records in ("all", "own", "none"):
            return dict.fromkeys(patients, role.records)
        named = dict.fromkeys(patients, "none")
        relation = conditions.relation_of(self.rules, self.principal, resources.c.id, self.moment)
        ordered = sorted(patients)
        generic = con.dialect.name == "postgresql"
        if generic:  # this query's shape never changes: plan it once (planning took 7 ms, running it 1 ms)
            con.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        for start in range(0, len(ordered), RELATIONS_AT_ONCE):
            # Always RELATIONS_AT_ONCE ids (padded with one that is no one's): one statement text, which
            # the database prepares and plans once instead of at every batch.
            part = ordered[start : start + RELATIONS_AT_ONCE]
            part += [""] * (RELATIONS_AT_ONCE - len(part))
            rows = con.execute(
                select(resources.c.id, relation).where(
                    resources.c.resource_type == "Patient", resources.c.id.in_(part)
                )
            )
            named.update({str(rid): str(name) for rid, name in rows if rid})
        if generic:  # the rest of the transaction (the log's own queries) plans as usual
            con.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
        return named

    def _relation(self, con: Connection, patient: str) -> str:
        return str(
            con.execute(
                select(conditions.relation_of(self.rules, self.principal, conditions.PATIENT, self.moment)),
                {"naer_patient": patient},
            ).scalar()
        )

    def entry(self, action: str, **values: Any) -> audit.Entry:
        p = self.principal
        return audit.Entry(
            action=action,
            actor=p.account,
            who=p.reference,
            display=p.display,
            role=p.role,
            organization=p.organization,
            address=p.address,
            purpose=values.pop("purpose", p.purpose),
            recorded=self.moment,
            **values,
        )

    def record_event(self, action: str, **values: Any) -> None:
        """An event that is not a read (sign-in, denial, break-the-glass): recorded by the writer."""
        if self.writer is not None:
            self.writer.put(audit.Pending(self.entry(action, **values), [], self))


def resolve(con: Connection, batch: list[audit.Pending]) -> list[audit.Entry]:
    """Turn pending reads into entries: one per citizen each read touched (IHE BALP), naming the
    relation that allowed it; a read of nobody's records (organisations, value sets) is not recorded.
    The whole batch costs one query for whose records were read and one per asker and second for the
    relations: the relations of an asker's reads within one second are looked up together, at the
    moment of the first (a relation that ends within that second may still be named for the later ones)."""
    belongs = citizens.of(con, [key for item in batch for key in item.keys])
    touched: list[dict[str, list[str]]] = []
    asked: dict[tuple[Any, ...], tuple[AccessContext, set[str]]] = {}
    for item in batch:
        per_patient: dict[str, list[str]] = {}
        for key in dict.fromkeys(item.keys):
            for p in sorted(belongs.get(key, ())):
                per_patient.setdefault(p, []).append(f"{key[0]}/{key[1]}")
        touched.append(per_patient)
        if per_patient:
            context: AccessContext = item.context
            slot = asked.setdefault(_second(context), (context, set()))
            slot[1].update(per_patient)
    relations = {key: context._relations(con, patients) for key, (context, patients) in asked.items()}
    found: list[audit.Entry] = []
    for item, per_patient in zip(batch, touched, strict=True):
        if not item.keys:
            found.append(item.entry)
            continue
        named = relations.get(_second(item.context), {})
        for patient, refs in sorted(per_patient.items()):
            found.append(
                audit.Entry(
                    **{**item.entry.__dict__, "patient": patient, "what": refs, "relation": named[patient]}
                )
            )
    return found


def _second(context: AccessContext) -> tuple[Any, ...]:
    return (conditions.asker(context.principal), int(context.moment.timestamp()))
