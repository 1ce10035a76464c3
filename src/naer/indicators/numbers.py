"""Numbers for people: thousands separated, and Danish style (1.234,5) when asked."""

from __future__ import annotations


def number(value: float | None, digits: int = 1, danish: bool = False) -> str:
    if value is None or value != value:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if danish else text
