"""Figures that measure the collaboration, read from the workflows themselves: the share of advice
answered within the agreed time (by department and agreement), follow-up done on time (by organisation),
acute-bed occupancy now (by unit) and framework delegations in force and expiring. Aggregates only (no
citizen is named); read as the platform, so they count every Task, and a page shows planners counts from
1 to 4 as suppressed, as the policy's ``suppress_below`` says (docs/access.md).

These are the operational figures of the workflows, counted where they happen; the dashboard shows them
beside the national indicators (its side menu), now and month by month for the last twelve months with
95 % Wilson intervals, the interval the indicators use (naer.indicators.stats). They are counted from the
store, not from the warehouse: the workflow resources are not exported to the warehouse's views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from naer import clock
from naer.coordination import beds, delegation
from naer.coordination import values as v
from naer.coordination.advice import advice_workflow, sent_under
from naer.coordination.calendar import DANISH_TIME
from naer.coordination.followup import follow_up_workflow
from naer.fhir.systems import ORG_KIND
from naer.indicators.stats import wilson
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.errors import StoreError
from naer.store.search.query import search

MONTHS = 12  # the months the series show, ending with this one
PAGE = 1000
LIMIT = 50 * PAGE  # Tasks read for one figure at most (the demo holds dozens; a region's month, thousands)
EXPIRING = timedelta(days=7)


@dataclass
class Share:
    """Of ``total`` finished, ``within`` in time; ``open_overdue`` still open past the deadline."""

    group: str
    detail: str
    total: int = 0
    within: int = 0
    open_overdue: int = 0
    open: int = 0


@dataclass
class Month:
    """Of ``total`` finished (answered, done) in ``month`` (YYYY-MM), ``within`` in time, with the
    share's 95 % Wilson interval (None for a month with none)."""

    month: str
    total: int = 0
    within: int = 0
    low: float | None = None
    high: float | None = None

    @property
    def share(self) -> float | None:
        return self.within / self.total if self.total else None


@dataclass
class Figures:
    at: datetime
    advice: list[Share] = field(default_factory=list)
    follow_up: list[Share] = field(default_factory=list)
    advice_by_month: list[Month] = field(default_factory=list)
    follow_up_by_month: list[Month] = field(default_factory=list)
    beds: list[dict[str, Any]] = field(default_factory=list)
    delegations_in_force: int = 0
    delegations_expiring: int = 0


def _all(db: Engine, kind: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for offset in range(0, LIMIT, PAGE):
        page = search(
            db, SYSTEM, kind, [*pairs, ("_sort", "_id"), ("_count", str(PAGE)), ("_offset", str(offset))]
        )
        found += [v.load(m) for m in page.matches]
        if len(page.matches) < PAGE:
            break
    return found


def _deadline(task: dict[str, Any]) -> datetime | None:
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    try:
        return v.aware(str(end)) if end else None
    except ValueError:
        return None


def _answered_at(db: Engine, task: dict[str, Any]) -> datetime | None:
    """When the advice request was first answered (its answer Communication's ``sent``)."""
    for item in task.get("output") or []:
        rid = v.ref_id(item.get("valueReference"), "Communication")
        if rid is None:
            continue
        try:
            sent = v.load(store.read(db, SYSTEM, "Communication", rid, audit=False)).get("sent")
            return v.aware(str(sent)) if sent else None
        except (StoreError, ValueError):
            continue
    return None


def _months(now: datetime) -> list[Month]:
    """The last ``MONTHS`` months, ending with the month of ``now`` (Danish time)."""
    here = now.astimezone(DANISH_TIME)
    year, month = here.year, here.month
    found = []
    for _ in range(MONTHS):
        found.append(Month(f"{year:04d}-{month:02d}"))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


def _count(months: dict[str, Month], finished: datetime | None, within: bool) -> None:
    """Count one finished item in the month it was finished (answered, done)."""
    if finished is None:
        return
    month = months.get(finished.astimezone(DANISH_TIME).strftime("%Y-%m"))
    if month is not None:
        month.total += 1
        month.within += int(within)


def _intervals(months: list[Month]) -> list[Month]:
    counted = [m for m in months if m.total]
    if counted:
        low, high = wilson(np.array([m.within for m in counted]), np.array([m.total for m in counted]))
        for m, lo, hi in zip(counted, low, high, strict=True):
            m.low, m.high = float(lo), float(hi)
    return months


def figures(db: Engine) -> Figures:
    """The collaboration's figures now, and month by month."""
    now = clock.now()
    found = Figures(now)
    advice_months = {m.month: m for m in _months(now)}
    follow_months = {m.month: m for m in _months(now)}
    flow = advice_workflow()
    shares: dict[tuple[str, str], Share] = {}
    for task in _all(db, "Task", [("code", f"{v.WORKFLOW_CODES}|{flow.code}")]):
        department = (task.get("owner") or {}).get("display") or (task.get("owner") or {}).get(
            "reference", ""
        )
        agreement = sent_under(task)[0]
        share = shares.setdefault((department, agreement), Share(department, agreement))
        state, deadline = v.state_of(task, flow), _deadline(task)
        if state in ("answered", "closed"):
            answered = _answered_at(db, task)
            in_time = answered is not None and deadline is not None and answered <= deadline
            share.total += 1
            share.within += int(in_time)
            _count(advice_months, answered, in_time)
        elif state != "withdrawn":
            share.open += 1
            share.open_overdue += int(deadline is not None and deadline < now)
    found.advice = sorted(shares.values(), key=lambda s: (s.group, s.detail))
    follow = follow_up_workflow()
    by_owner: dict[str, Share] = {}
    for task in _all(db, "Task", [("code", f"{v.WORKFLOW_CODES}|{follow.code}")]):
        owner = (task.get("owner") or {}).get("display") or (task.get("owner") or {}).get("reference", "")
        share = by_owner.setdefault(owner, Share(owner, ""))
        state, deadline = v.state_of(task, follow), _deadline(task)
        if state == "done":
            finished = v.aware(str(task.get("lastModified"))) if task.get("lastModified") else None
            in_time = finished is not None and deadline is not None and finished <= deadline
            share.total += 1
            share.within += int(in_time)
            _count(follow_months, finished, in_time)
        elif state in ("requested", "accepted"):
            share.open += 1
            share.open_overdue += int(deadline is not None and deadline < now)
    found.follow_up = sorted(by_owner.values(), key=lambda s: s.group)
    found.advice_by_month = _intervals(list(advice_months.values()))
    found.follow_up_by_month = _intervals(list(follow_months.values()))
    for unit in _all(db, "Organization", [("type", f"{ORG_KIND}|municipal-acutebeds"), ("active", "true")]):
        try:
            now_at = beds.occupancy(db, unit["id"])
        except StoreError:
            continue
        if now_at.beds:
            found.beds.append({"unit": now_at.name, "beds": len(now_at.beds), "occupied": now_at.occupied})
    today = now.astimezone(DANISH_TIME).date().isoformat()
    soon = (now + EXPIRING).astimezone(DANISH_TIME).date().isoformat()
    category = f"{delegation.REQUEST_CATEGORY}|framework-delegation"
    for order in _all(db, "ServiceRequest", [("category", category), ("status", "active")]):
        period = order.get("occurrencePeriod") or {}
        start, end = str(period.get("start", "")), str(period.get("end", ""))
        if start <= today <= end:
            found.delegations_in_force += 1
            found.delegations_expiring += int(end <= soon)
    return found
