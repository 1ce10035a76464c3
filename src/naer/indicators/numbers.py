"""Numbers for people: thousands separated, and Danish style (1.234,5) when asked."""

from __future__ import annotations

from typing import Any


def number(value: float | None, digits: int = 1, danish: bool = False) -> str:
    if value is None or value != value:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if danish else text


def without_nan(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NaN (no value: nothing to divide by) as None, which JSON, Vega-Lite and FHIR can carry."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]
