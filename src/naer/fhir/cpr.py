"""Danish CPR numbers (ddmmyy-ssss): parsing, the century rule, and Nær's synthetic-CPR rule.

Real CPR numbers have a day of month 01-31. A *synthetic* CPR number, as written by ``naer synth``,
adds 60 to the day (61-91), so it is never a valid date and can never be a real person's number;
everything else (the century digit, the sex digit) follows the real rules, so software that reads
CPR numbers still gets the right birth date and sex once it subtracts 60. The modulus-11 check is
not applied: numbers issued since 2007 need not satisfy it (CPR-kontoret).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

SYNTHETIC_DAY_OFFSET = 60
_PATTERN = re.compile(r"^(\d{2})(\d{2})(\d{2})-?(\d{4})$")


class CprError(ValueError):
    """The text is not a CPR number (real or synthetic)."""


@dataclass(frozen=True)
class Cpr:
    birth_date: date
    sex: str  # "male" or "female"
    synthetic: bool


def century(yy: int, seventh: int) -> int:
    """The birth century from the two-digit year and the 7th digit (CPR-kontoret's table)."""
    if seventh in (0, 1, 2, 3):
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def century_digits(year: int) -> tuple[int, ...]:
    """The 7th digits that give this birth year its right century, most used first."""
    yy = year % 100
    return tuple(d for d in (0, 1, 2, 3, 4, 9, 5, 6, 7, 8) if century(yy, d) + yy == year)


def parse(text: str) -> Cpr:
    """Parse a real or synthetic CPR number; raise CprError with a precise reason otherwise."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise CprError(f"{text!r} is not a CPR number: expected ddmmyy-ssss (10 digits)")
    dd, mm, yy, seq = int(match[1]), int(match[2]), int(match[3]), match[4]
    synthetic = dd > SYNTHETIC_DAY_OFFSET
    day = dd - SYNTHETIC_DAY_OFFSET if synthetic else dd
    year = century(yy, int(seq[0])) + yy
    try:
        born = date(year, mm, day)
    except ValueError as exc:
        raise CprError(f"{text!r} is not a CPR number: {exc}") from None
    return Cpr(born, "male" if int(seq[3]) % 2 else "female", synthetic)


def synthetic(born: date, sex: str, serial: int, seventh: int) -> str:
    """A synthetic CPR number (day + 60) for this birth date and sex.

    ``serial`` (0-99) and ``seventh`` (a valid century digit) make it unique; the last digit is odd
    for male and even for female and takes one of five values picked by ``serial // 100``.
    """
    if seventh not in century_digits(born.year):
        raise CprError(f"7th digit {seventh} does not give birth year {born.year}")
    if not 0 <= serial < 500:
        raise CprError(f"serial {serial} out of range 0-499")
    last = 2 * (serial // 100) + (1 if sex == "male" else 0)
    return (
        f"{born.day + SYNTHETIC_DAY_OFFSET:02d}{born.month:02d}{born.year % 100:02d}"
        f"-{seventh}{serial % 100:02d}{last}"
    )
