"""Why a citizen is on a worklist: the three factors that raised their risk most (the model's TreeSHAP
contributions summed over each factor's features, reasons.yaml), said in plain words with their own values."""

from __future__ import annotations

import string
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
        for key in ("text", "text_da"):
            if not isinstance(factor.get(key), str):
                raise UserError(f"reasons.yaml: {name} has no {key} (the reason in English and in Danish)")
        _check_when(f"reasons.yaml {name}", factor.get("when", {}), known)
    missing = known - set(seen)
    if missing:
        raise UserError(f"reasons.yaml: no factor for {', '.join(sorted(missing))}")
    return data


def _shown(value: Any, decimal: str = ".") -> str:
    if isinstance(value, float):
        return f"{abs(value):.1f}".replace(".", decimal)
    return str(value)


class _Words(string.Formatter):
    """``{name}`` the value as shown; ``{name:one|many}`` the word for 1 or for any other number, and
    ``{name:zero|one|many}`` also one for 0 (the forms may hold ``{name}`` themselves)."""

    def __init__(self, decimal: str) -> None:
        self.decimal = decimal

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" not in format_spec:
            return _shown(value, self.decimal)
        forms = format_spec.split("|")
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if len(forms) == 3:
            chosen = forms[0] if number == 0 else forms[1] if number == 1 else forms[2]
        else:
            chosen = forms[0] if number == 1 else forms[-1]
        return chosen

    def say(self, text: str, values: dict[str, Any]) -> str:
        """The text with the values and the forms chosen (a form's own ``{name}`` is filled in first, as
        Python fills nested fields of a format spec)."""
        return self.vformat(text, (), values)


def reasons(
    model: Model, contributions: np.ndarray, rows: list[dict[str, Any]], top: int = 3, lang: str = "en"
) -> list[list[str]]:
    """For each row, up to ``top`` plain-words reasons, largest first (only factors that raised the risk
    and whose text is true of the citizen), in English or Danish (``lang``)."""
    words = _Words("," if lang == "da" else ".")
    key = "text_da" if lang == "da" else "text"
    table = factors()
    index = {f: j for j, f in enumerate(model.features)}
    names = list(table)
    columns = [[index[f] for f in table[n]["features"] if f in index] for n in names]
    by_factor = np.column_stack([contributions[:, cols].sum(axis=1) for cols in columns])
    out = []
    for i, row in enumerate(rows):
        said: list[str] = []
        for k in np.argsort(-by_factor[i]):
            if by_factor[i, k] <= 0 or len(said) == top:
                break
            factor = table[names[k]]
            if holds(factor.get("when", {}), row):
                said.append(words.say(factor[key], row))
        out.append(said)
    return out
