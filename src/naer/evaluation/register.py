"""The register of initiatives: one reviewed file per collaboration effort (``initiatives/*.yaml``).

Each file says who owns the initiative, where and for whom it runs, from when to when, which national
indicators it should move and which way, and how it is to be judged (the comparison and the designs).
A file that names an area, indicator or design Nær does not know, or a period that does not make
sense, is refused with one line that says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from naer.errors import UserError

FOLDER = Path(__file__).with_name("initiatives")
DESIGNS = ("did", "synthetic-control", "its")
MAX_BYTES = 256 * 1024
STATES = ("planned", "running", "evaluated")


Design = Literal["did", "synthetic-control", "its"]


def _all_designs() -> list[Design]:
    return ["did", "synthetic-control", "its"]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_age: int = Field(0, ge=0, le=120)
    description: str
    description_da: str


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    expected: Literal["lower", "higher"]


class Area(BaseModel):
    model_config = ConfigDict(extra="forbid")
    municipalities: list[str] = Field(min_length=1)


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pool: Literal["region"] = "region"  # the warehouse's other municipalities (a region's data)
    exclude: list[str] = Field(default_factory=list)


class Plant(BaseModel):
    """The effect ``naer synth --initiative`` plants in a synthetic population (never in real data): in the
    initiative's area, for its target group, from its start to its end, a share of the acute admissions
    (those of the named SKS diagnoses, or all) is handled in a municipal acute bed instead, or averted."""

    model_config = ConfigDict(extra="forbid")
    change: Literal["acute-bed-instead", "averted"]
    share: float = Field(gt=0, le=1)
    diagnoses: list[str] = Field(default_factory=list)


class Initiative(BaseModel):
    """One initiative of the register."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=300)
    name_da: str = Field(min_length=1, max_length=300)
    owners: list[str] = Field(min_length=1, max_length=20)
    area: Area
    target: Target
    start: date
    end: date
    indicators: list[Expected] = Field(min_length=1)
    resources: list[str] = Field(default_factory=list)
    comparison: Comparison = Field(default_factory=Comparison)
    designs: list[Design] = Field(default_factory=_all_designs, min_length=1)
    state: Literal["planned", "running", "evaluated"]
    planted: Plant | None = None

    @model_validator(mode="after")
    def _sensible(self) -> Initiative:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        if self.start.day != 1 or self.end.day != 1:
            raise ValueError("start and end are the first of a month (the evaluation counts whole months)")
        if self.start.year < 1900 or self.end.year > 2200:
            raise ValueError("start and end are dates from 1900 to 2200")
        ids = [i.id for i in self.indicators]
        if len(set(ids)) != len(ids):
            raise ValueError("an indicator is named twice")
        if len(set(self.designs)) != len(self.designs):
            raise ValueError("a design is named twice")
        return self


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


def read(path: Path) -> Initiative:
    """One initiative file, checked against what Nær knows (areas, indicators); UserError if not."""
    if not path.is_file() or path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path}: an initiative is a YAML file of at most {MAX_BYTES // 1024} KiB")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot be read as YAML ({(str(exc).splitlines() or ['?'])[0]})") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be an initiative") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: an initiative is a YAML mapping of its fields")
    try:
        initiative = Initiative.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the file"
        raise UserError(f"{path}: {where}: {first.get('msg', 'not valid')}") from None
    _known(initiative, path)
    return initiative


def _known(initiative: Initiative, path: Path) -> None:
    from naer.indicators.definition import catalogue, groupings

    known = catalogue()
    for item in [*(i.id for i in initiative.indicators), *initiative.resources]:
        if item not in known:
            raise UserError(f"{path}: indicator {item!r} is not one of Nær's ({', '.join(sorted(known))})")
    for code in [*initiative.area.municipalities, *initiative.comparison.exclude]:
        if not (code.isascii() and code.isdigit() and len(code) in (3, 4)):
            raise UserError(f"{path}: area {code!r} is not a municipality code (four digits, 0741)")
    for code in initiative.planted.diagnoses if initiative.planted else []:
        if not (code.isascii() and code.isalnum() and code[:1] == "D" and 2 <= len(code) <= 8):
            raise UserError(f"{path}: planted.diagnoses {code!r} is not an SKS diagnosis code (DJ44)")
    bands = groupings()["age_bands"]
    if initiative.target.min_age not in bands:
        raise UserError(f"{path}: target.min_age must start an age band ({', '.join(map(str, bands))})")


@cache
def register() -> dict[str, Initiative]:
    """Every initiative of the register, by id."""
    found: dict[str, Initiative] = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        initiative = read(path)
        if initiative.id in found:
            raise UserError(f"{path}: the id {initiative.id!r} is used twice")
        found[initiative.id] = initiative
    return found


def find(name: str) -> Initiative:
    """An initiative by its id in the register, or from a file path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return read(path)
    known = register()
    if name not in known:
        raise UserError(f"no initiative {name!r} in the register ({', '.join(sorted(known)) or 'none'})")
    return known[name]
