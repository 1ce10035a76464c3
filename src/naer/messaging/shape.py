"""The first look at a message from outside, before anything reads it: a JSON shape FHIR allows.

FHIR JSON has no nulls, no strings with control characters (only tab, CR and LF), and MedCom's messages
are small trees (their size is in attachments' base64 text, not in the number of elements). A message
deeper than ``DEPTH`` levels or with more than ``NODES`` objects and arrays is refused before it is
validated: walking such a tree would take seconds (the tester's 16,000 payloads took 10 s), and no
message of the guides comes near either limit (the largest example has about 400 nodes, 9 levels).
"""

from __future__ import annotations

import re
from typing import Any

from naer.messaging.validate import Problem

DEPTH = 48  # as the API's JSON bodies (NAER_MAX_DEPTH's default)
NODES = 20_000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def problems(message: Any) -> list[Problem]:
    """What makes ``message`` not FHIR JSON at all (empty when its shape is fine), at most 20."""
    found: list[Problem] = []
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(message, "Bundle", 0)]
    while stack and len(found) < 20:
        value, path, depth = stack.pop()
        if value is None:
            found.append(Problem("error", "structure", path, "null is not a FHIR value"))
        elif isinstance(value, str):
            if CONTROL.search(value):
                found.append(
                    Problem("error", "structure", path, "a control character is not allowed in a FHIR string")
                )
        elif isinstance(value, (dict, list)):
            nodes += 1
            if nodes > NODES:
                found.append(
                    Problem("error", "structure", path, f"the message has more than {NODES:,} elements")
                )
                break
            if depth >= DEPTH:
                found.append(
                    Problem("error", "structure", path, f"the message is nested deeper than {DEPTH} levels")
                )
                continue
            if isinstance(value, dict):
                for key, inner in value.items():
                    if CONTROL.search(key):
                        found.append(
                            Problem("error", "structure", path, "a control character in an element name")
                        )
                    stack.append((inner, f"{path}.{key}", depth + 1))
            else:
                if not value:
                    found.append(Problem("error", "structure", path, "an empty array is not a FHIR value"))
                stack.extend((inner, f"{path}[{index}]", depth + 1) for index, inner in enumerate(value))
    return found
