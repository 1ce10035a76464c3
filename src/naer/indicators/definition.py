"""Indicator definitions: YAML files a planner can read, each naming the SQL that finds its events.

A definition says what is counted (code lists, age limit, parameters of its SQL), how it is expressed
(a rate per 1,000 citizen-years or a share in per cent) and where the official definition comes from.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from naer.errors import UserError

HERE = Path(__file__).parent
DEFINITIONS = HERE / "definitions"
SQL = HERE / "sql"
_CODE = re.compile(r"^D[A-Z][0-9A-Z]*$")
_RANGE = re.compile(r"^(D[A-Z])([0-9]{2})-D[A-Z]([0-9]{2})$")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    title_da: str  # every text a page shows is in Danish first (the English beside it for the switch)
    url: str
    note: str | None = None
    note_da: str | None = None

    @model_validator(mode="after")
    def _note_in_both(self) -> Source:
        if (self.note is None) != (self.note_da is None):
            raise ValueError("note and note_da come together: a page shows the note in the reader's language")
        return self


class Reference(BaseModel):
    """A published level drawn as the reference line of time series (same unit as the indicator)."""

    model_config = ConfigDict(extra="forbid")
    value: float
    label: str
    label_da: str


class CodeGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    label_da: str | None = None  # an indicator's groups must have it (their page shows it); schemes need not
    codes: list[str] = Field(min_length=1)

    @field_validator("codes")
    @classmethod
    def _sks(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not (_CODE.match(code) or _RANGE.match(code)):
                raise ValueError(
                    f"{code!r} is not an SKS diagnosis code (D + ICD-10, no dot) or a range DX00-DX99"
                )
        return codes

    def prefixes(self) -> list[str]:
        """Codes are matched as prefixes (SKS is hierarchical: DJ44 covers DJ441); a range DJ12-DJ18
        stands for every three-character category from the first to the last."""
        out: list[str] = []
        for code in self.codes:
            m = _RANGE.match(code)
            if m:
                letter, first, last = m.group(1), int(m.group(2)), int(m.group(3))
                out += [f"{letter}{n:02d}" for n in range(first, last + 1)]
            else:
                out.append(code)
        return out


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    title_da: str
    kind: Literal["rate", "share"]
    per: int
    unit: str
    min_age: int = 0
    direction: Literal["lower-is-better", "higher-is-better", "neutral"]
    funnel: bool = True
    sql: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str
    description_da: str
    source: Source
    reference: Reference | None = None
    code_groups: dict[str, CodeGroup] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _groups_in_danish(self) -> Indicator:
        missing = [name for name, group in self.code_groups.items() if not group.label_da]
        if missing:
            raise ValueError(f"code_groups {', '.join(missing)}: label_da missing (the page shows it)")
        return self

    def sql_text(self) -> str:
        return (SQL / self.sql).read_text(encoding="utf-8")

    def code_rows(self) -> list[tuple[str, str]]:
        return [(name, prefix) for name, group in self.code_groups.items() for prefix in group.prefixes()]


def load_indicator(path: Path, age_bands: list[int]) -> Indicator:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        indicator = Indicator.model_validate(raw)
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"indicator definition {path}: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = f"{where}: " if where else ""  # a rule on the whole definition names no field
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UserError(f"indicator definition {path}: {where}{message}") from None
    if not (SQL / indicator.sql).is_file():
        raise UserError(f"indicator definition {path}: its SQL file {indicator.sql} does not exist")
    if indicator.min_age not in age_bands:
        raise UserError(
            f"indicator definition {path}: min_age {indicator.min_age} must be an age band bound {age_bands}"
        )
    return indicator


@cache
def groupings() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((HERE / "groupings.yaml").read_text(encoding="utf-8"))
    return data


@cache
def catalogue() -> dict[str, Indicator]:
    """Every indicator the platform ships, by id, in a stable order."""
    bands = groupings()["age_bands"]
    found = [load_indicator(p, bands) for p in sorted(DEFINITIONS.glob("*.yaml"))]
    return {i.id: i for i in found}


def pick(ids: list[str] | None) -> list[Indicator]:
    known = catalogue()
    if not ids:
        return list(known.values())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UserError(f"unknown indicator {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[i] for i in ids]
