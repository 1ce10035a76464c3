"""One rule for every value a client gives before it reaches the database or Python's limits.

Python's ``str.isdigit`` accepts other scripts' digits ("٣") and ``int`` any length, while the database's
integers end at 2**31 or 2**63; JSON may nest deeper than Python recurses and may carry ``\\u0000``, which
PostgreSQL cannot store. Each check here refuses with a ``Invalid`` (400) that names the value.
"""

from __future__ import annotations

import re
from typing import Any

from naer.store.errors import Invalid, TooLarge

DIGITS = re.compile(r"[0-9]{1,18}")
INT32 = 2**31 - 1


def whole(name: str, text: str, lowest: int = 0, highest: int = INT32, clamp: bool = False) -> int:
    """A whole number written in ASCII digits within [lowest, highest] (``clamp``: moved into it)."""
    if not isinstance(text, str) or not DIGITS.fullmatch(text):
        raise Invalid(
            f"{name} must be a whole number in ASCII digits (0-{highest}), not {text!r}", where=name
        )
    value = int(text)
    if lowest <= value <= highest:
        return value
    if clamp:
        return max(lowest, min(value, highest))
    raise Invalid(f"{name} must lie between {lowest} and {highest}, not {value}", where=name)


def no_nul(name: str, text: str) -> str:
    if "\x00" in text:
        raise Invalid(f"{name} holds a NUL character, which no FHIR value may hold", where=name)
    return text


def shape(value: Any, max_depth: int, max_array: int = 10_000) -> None:
    """Refuse JSON nested deeper than ``max_depth``, with a list longer than ``max_array``, or holding a NUL
    in any key or string (walked without recursion, so no input can exhaust Python's stack)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if depth > max_depth:
            raise Invalid(f"the body nests deeper than {max_depth} levels (at {where or 'the top'})", where)
        if isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in key:
                    raise Invalid("a key of the body holds a NUL character", where)
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, f"{where}.{key}" if where else key))
                elif isinstance(item, str) and "\x00" in item:
                    at = f"{where}.{key}" if where else key
                    raise Invalid(f"{at} holds a NUL character, which no FHIR value may hold", at)
        elif isinstance(node, list):
            if len(node) > max_array:
                raise TooLarge(
                    f"{where or 'the body'} holds {len(node):,} items; the limit is {max_array:,}", where
                )
            for n, item in enumerate(node):
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, f"{where}[{n}]"))
                elif isinstance(item, str) and "\x00" in item:
                    raise Invalid(f"{where}[{n}] holds a NUL character, which no FHIR value may hold", where)
