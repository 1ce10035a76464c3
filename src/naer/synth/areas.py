"""Resolve ``--area`` (a named area or a list of municipality codes) into municipalities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naer.errors import UserError
from naer.synth.model import Model


@dataclass(frozen=True)
class Municipality:
    code: str  # four digits, as in DK-core
    name: str
    region: str  # ISO 3166-2, e.g. DK-82
    population: int
    share_65plus: float
    hospital: str
    postal: tuple[str, ...]
    admission_factor: float
    acute_bed_share: float | None


def _municipality(code: str, raw: dict[str, Any]) -> Municipality:
    return Municipality(
        code=code,
        name=raw["name"],
        region=raw["region"],
        population=int(raw["population"]),
        share_65plus=float(raw.get("share_65plus", 0.21)),
        hospital=raw["hospital"],
        postal=tuple(raw["postal"]),
        admission_factor=float(raw.get("admission_factor", 1.0)),
        acute_bed_share=(float(raw["acute_bed_share"]) if "acute_bed_share" in raw else None),
    )


def known_areas(model: Model) -> list[str]:
    return list(model.areas["areas"])


def resolve_area(model: Model, area: str) -> tuple[str, list[Municipality]]:
    """Return the area's display name and its municipalities in code order.

    ``area`` is a named area (``samsoe``, ``region-midt``, ``denmark``) or a comma-separated list of
    municipality codes (``741,727`` or ``0741,0727``).
    """
    table: dict[str, Any] = model.areas["municipalities"]
    named: dict[str, Any] = model.areas["areas"]
    if area in named:
        spec = named[area]
        if spec.get("all"):
            codes = sorted(table)
        elif "region" in spec:
            codes = sorted(c for c, m in table.items() if m["region"] == spec["region"])
        else:
            codes = sorted(spec["municipalities"])
        return spec["name"], [_municipality(c, table[c]) for c in codes]
    parts = [p.strip() for p in area.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise UserError(
            f"unknown area {area!r}: use one of {', '.join(named)} or municipality codes such as 741,727"
        )
    codes = sorted({p.zfill(4) for p in parts})
    unknown = [c for c in codes if c not in table]
    if unknown:
        raise UserError(f"unknown municipality code(s) {', '.join(unknown)} in --area {area!r}")
    names = ", ".join(table[c]["name"] for c in codes)
    return names, [_municipality(c, table[c]) for c in codes]
