"""UCUM units in a canonical form, so that quantity search compares 1 g with 1000 mg (FHIR's ``ucum``
comparison): each UCUM code is parsed once by ucumvert (UCUM's grammar, over Pint) and kept as the factor
and offset that take a value to SI base units.

A code that is not valid UCUM, or whose conversion the library cannot do, has no canonical form: its
quantities are then found by their value, system and code as written, never by conversion.
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from typing import Any

UCUM = "http://unitsofmeasure.org"
LONGEST = 64  # characters of a unit code worth parsing (UCUM codes are short; a longer one is not one)
LONG_NUMBER = re.compile(r"[0-9]{4,}")  # no UCUM unit needs a factor or exponent of four digits
_lock = threading.Lock()  # the parser and the registry are not known to be thread-safe
_registry: Any = None


def _ureg() -> Any:
    global _registry
    if _registry is None:
        from ucumvert import PintUcumRegistry  # about a second to load: only when a UCUM unit is met

        _registry = PintUcumRegistry()
    return _registry


@lru_cache(maxsize=4096)
def canonical(code: str) -> tuple[str, float, float] | None:
    """(canonical unit, factor, offset) of a UCUM code: value x factor + offset is the value in base
    units; None when the code is not one this store can convert."""
    if not code or len(code) > LONGEST or not code.isprintable() or LONG_NUMBER.search(code):
        return None  # 10*99999999 would have Pint compute an integer of a hundred million digits
    with _lock:
        try:
            ureg = _ureg()
            unit = ureg.from_ucum(code)
            units = unit.units
            zero = ureg.Quantity(0, units).to_base_units()
            one = ureg.Quantity(1, units).to_base_units()
            factor = float((one.magnitude - zero.magnitude) * unit.magnitude)
            offset = float(zero.magnitude)
            name = str(one.units) or "1"
        except Exception:  # any failure of a third-party parser on a hostile unit means "not UCUM"
            return None
    if not (math.isfinite(factor) and math.isfinite(offset)) or factor == 0:
        return None
    return name, factor, offset


def to_canonical(value: float, code: str) -> tuple[str, float] | None:
    """A value in ``code`` as (canonical unit, value in base units), rounded to 12 significant digits
    (conversion factors such as 10*3/uL come out of floating point as 999999999999.9999)."""
    found = canonical(code)
    if found is None:
        return None
    name, factor, offset = found
    converted = value * factor + offset
    return (name, float(f"{converted:.12g}")) if math.isfinite(converted) else None
