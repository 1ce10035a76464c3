"""Answer-time agreements for advice requests, as data: one reviewed YAML file per agreement between a
region and a municipality (``agreements/*.yaml``), read and checked here, and the deadline each urgency
gives a request sent at a given moment.

An agreement is chosen by the region of the department asked and the municipality the citizen lives
in: an agreement naming the municipality wins over the region's standard (``municipalities: "*"``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from naer.coordination.calendar import WorkingCalendar
from naer.errors import UserError

FOLDER = Path(__file__).with_name("agreements")
DURATION = re.compile(r"^(?P<n>[1-9]\d{0,3})(?P<unit>[mh])$")
MONTH_DAY = re.compile(r"^(?P<m>\d{2})-(?P<d>\d{2})$")
MUNICIPALITY = re.compile(r"^\d{4}$")
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hours(_Strict):
    opens: time
    closes: time

    @model_validator(mode="after")
    def _order(self) -> Hours:
        if self.opens >= self.closes:
            raise ValueError("working hours must open before they close")
        return self


class SameDay(_Strict):
    cutoff: time


class Urgency(_Strict):
    """One answer time: exactly one of ``within``, ``same_working_day`` and ``working_days``."""

    code: Code
    label: str
    label_da: str
    priority: Literal["routine", "urgent", "asap", "stat"]
    within: str | None = None
    same_working_day: SameDay | None = None
    working_days: Annotated[int, Field(ge=1, le=30)] | None = None

    @field_validator("within")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not DURATION.match(value):
            raise ValueError(f"{value!r} is not a duration such as 30m or 2h")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> Urgency:
        given = [self.within is not None, self.same_working_day is not None, self.working_days is not None]
        if sum(given) != 1:
            raise ValueError(
                f"urgency {self.code}: give exactly one of within, same_working_day, working_days"
            )
        return self

    def deadline(self, sent: datetime, calendar: WorkingCalendar) -> datetime:
        """When a request of this urgency sent at ``sent`` must be answered (UTC)."""
        if self.within is not None:
            match = DURATION.match(self.within)
            assert match is not None
            minutes = int(match["n"]) * (60 if match["unit"] == "h" else 1)
            return sent + timedelta(minutes=minutes)
        if self.same_working_day is not None:
            return calendar.same_working_day(sent, self.same_working_day.cutoff)
        assert self.working_days is not None
        return calendar.add_working_days(sent, self.working_days)


class Agreement(_Strict):
    id: Code
    version: Annotated[int, Field(ge=1)]
    title: str
    title_da: str
    region: Annotated[str, Field(pattern=r"^DK-8[1-5]$")]
    municipalities: list[str] | Literal["*"]
    valid_from: date
    working_hours: Hours
    also_closed: list[str] = []
    escalate_to: Code
    urgencies: Annotated[list[Urgency], Field(min_length=1)]

    @field_validator("municipalities")
    @classmethod
    def _codes(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list):
            if not value:
                raise ValueError("name at least one municipality, or '*' for the region's standard")
            bad = [v for v in value if not MUNICIPALITY.match(v)]
            if bad:
                raise ValueError(f"municipality codes are four digits (0741), not {bad}")
        return value

    @field_validator("also_closed")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        for text in value:
            match = MONTH_DAY.match(text)
            if not match:
                raise ValueError(f"{text!r} is not a month-day such as 12-24")
            date(2024, int(match["m"]), int(match["d"]))  # raises for 02-30
        return value

    @model_validator(mode="after")
    def _unique(self) -> Agreement:
        codes = [u.code for u in self.urgencies]
        if len(set(codes)) != len(codes):
            raise ValueError("each urgency code may appear once")
        return self

    @property
    def calendar(self) -> WorkingCalendar:
        closed = frozenset((int(t[:2]), int(t[3:])) for t in self.also_closed)
        return WorkingCalendar(self.working_hours.opens, self.working_hours.closes, closed)

    def urgency(self, code: str) -> Urgency:
        for u in self.urgencies:
            if u.code == code:
                return u
        known = ", ".join(u.code for u in self.urgencies)
        raise UserError(f"the agreement {self.id} has no urgency {code!r} (it has: {known})")

    def covers(self, region: str, municipality: str | None) -> bool:
        if region != self.region:
            return False
        return self.municipalities == "*" or municipality in self.municipalities


def load(path: Path) -> Agreement:
    """One agreement file, checked; a clear error naming the file and the field when it is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Agreement.model_validate(raw)
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path.name}: cannot read the agreement: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise UserError(f"{path.name}: {where}: {first['msg']}") from None


@cache
def agreements(folder: Path = FOLDER) -> tuple[Agreement, ...]:
    found = tuple(load(p) for p in sorted(folder.glob("*.yaml")))
    ids = [a.id for a in found]
    if len(set(ids)) != len(ids):
        raise UserError(f"{folder}: two agreements share an id ({sorted(ids)})")
    return found


def choose(region: str, municipality: str | None, folder: Path = FOLDER) -> Agreement:
    """The agreement between ``region`` and ``municipality``: the municipality's own, else the region's
    standard."""
    candidates = [a for a in agreements(folder) if a.covers(region, municipality)]
    own = [a for a in candidates if a.municipalities != "*"]
    if own or candidates:
        return (own or candidates)[0]
    raise UserError(
        f"no answer-time agreement between region {region} and municipality {municipality or '(unknown)'}"
    )


def by_id(agreement_id: str, folder: Path = FOLDER) -> Agreement | None:
    return next((a for a in agreements(folder) if a.id == agreement_id), None)
