"""Why a citizen is on a worklist: the three factors that raised their risk most (the model's TreeSHAP
contributions summed over each factor's features, reasons.yaml), said in plain words with their own values."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from naer.errors import UserError
from naer.risk.model import Model, population_features

HERE = Path(__file__).parent


def holds(when: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether every test of ``when`` holds for ``row``: a value (or true/false) is compared for equality,
    {min: x} and {max: x} bound it; a missing value never passes."""
    for name, test in when.items():
        value = row.get(name)
        if value is None:
            return False
        if isinstance(test, dict):
            if "min" in test and not value >= test["min"]:
                return False
            if "max" in test and not value <= test["max"]:
                return False
        elif value != test:
            return False
    return True


def _check_when(where: str, when: dict[str, Any], known: set[str]) -> None:
    for name, test in when.items():
        if name not in known:
            raise UserError(f"{where}: {name!r} is not a feature ({', '.join(sorted(known))})")
        if isinstance(test, dict) and not set(test) <= {"min", "max"}:
            raise UserError(f"{where}: {name} may test only min and max, not {', '.join(sorted(test))}")


@cache
def factors() -> dict[str, dict[str, Any]]:
    """reasons.yaml, checked: every feature of the model belongs to exactly one factor."""
    data: dict[str, dict[str, Any]] = yaml.safe_load((HERE / "reasons.yaml").read_text(encoding="utf-8"))[
        "factors"
    ]
    known = set(population_features())
    seen: dict[str, str] = {}
    for name, factor in data.items():
        for feature in factor["features"]:
            if feature not in known:
                raise UserError(f"reasons.yaml: {name} names the unknown feature {feature}")
            if feature in seen:
                raise UserError(f"reasons.yaml: {feature} is in both {seen[feature]} and {name}")
            seen[feature] = name
        _check_when(f"reasons.yaml {name}", factor.get("when", {}), known)
    missing = known - set(seen)
    if missing:
        raise UserError(f"reasons.yaml: no factor for {', '.join(sorted(missing))}")
    return data


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{abs(value):.1f}"
    return str(value)


def reasons(
    model: Model, contributions: np.ndarray, rows: list[dict[str, Any]], top: int = 3
) -> list[list[str]]:
    """For each row, up to ``top`` plain-words reasons, largest first (only factors that raised the risk
    and whose text is true of the citizen)."""
    table = factors()
    index = {f: j for j, f in enumerate(model.features)}
    names = list(table)
    columns = [[index[f] for f in table[n]["features"] if f in index] for n in names]
    by_factor = np.column_stack([contributions[:, cols].sum(axis=1) for cols in columns])
    out = []
    for i, row in enumerate(rows):
        said: list[str] = []
        shown = {key: _shown(v) for key, v in row.items()}
        for k in np.argsort(-by_factor[i]):
            if by_factor[i, k] <= 0 or len(said) == top:
                break
            factor = table[names[k]]
            if holds(factor.get("when", {}), row):
                said.append(factor["text"].format(**shown))
        out.append(said)
    return out
