"""FHIR JSON read and written with its decimals exactly as written.

FHIR says a decimal's precision is significant (``0.010`` is not ``0.01``, ``595.00`` is not ``595.0``),
but JSON parsers turn numbers into binary floats. Most numbers survive that (``72.5`` prints as
``72.5``), so orjson reads every body first; only a body holding a number whose float would print
differently (a trailing zero, an exponent, more digits than a float keeps) is read again by the
standard library with each such decimal kept as an ``Exact``: a float (so validation, the index and
comparisons work unchanged) that remembers its text, which ``dumps`` writes back as it came.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A number after ':' '[' or ',' and before ',' ']' '}' or space that a float would not print back the
# same. Inside a string this can match too; such a body only takes the slower, exact route.
_INEXACT = re.compile(
    rb"[:\[,]\s*-?(?:[0-9]+\.[0-9]*0|[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+|[0-9.]{17,})\s*[,\]}]"
)


class Exact(float):
    """A JSON decimal that remembers how it was written."""

    text: str

    def __new__(cls, text: str) -> Exact:
        number = float.__new__(cls, text)
        number.text = text
        return number


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _integer(text: str) -> Any:
    """An integer; one beyond 64 bits (which orjson cannot write) kept as written, like a decimal."""
    if len(text.lstrip("-")) > 40:
        raise ValueError(f"an integer of {len(text)} digits is beyond what this server keeps")
    number = int(text)
    return number if -(2**63) <= number < 2**63 else Exact(text)


def _exact(text: str) -> Any:
    number = float(text)
    return Exact(text) if repr(number) != text else number


def loads(raw: bytes | str) -> Any:
    """Parse JSON, keeping decimals as written; ``orjson.JSONDecodeError`` (a ValueError) if it is not
    JSON. Nesting beyond the parser's depth, NaN and Infinity are errors, as with orjson."""
    value = orjson.loads(raw)
    data = raw.encode() if isinstance(raw, str) else raw
    if not _INEXACT.search(data):
        return value
    try:
        return json.loads(data, parse_float=_exact, parse_int=_integer, parse_constant=_constant)
    except RecursionError:
        raise orjson.JSONDecodeError("nested too deeply", "", 0) from None
    except ValueError as error:  # an integer of thousands of digits, which orjson read as a float
        raise orjson.JSONDecodeError(str(error).splitlines()[0], "", 0) from None


def _default(value: Any) -> Any:
    if isinstance(value, Exact):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> bytes:
    """JSON of ``value`` with ``Exact`` decimals written as they were read."""
    return orjson.dumps(value, default=_default)
