"""FHIR R4's own invariants that every profile repeats (dom-*, bdl-*, ext-1, txt-*), answered in Python.

The engine evaluates every invariant of a profile by FHIRPath; the base resource's invariants are on
every resource, entry and extension of a message, and evaluating them there was three quarters of the
time a message took to validate. Each rule here answers the same question as its FHIRPath expression,
and is used only while the profile's expression is exactly R4's (``EXPRESSIONS``); where the answer takes
more than a glance (a resource with contained resources, a document Bundle) it returns None and the
FHIRPath is evaluated as before. tests/test_messaging_validate.py runs every example, every message Nær
builds and every mutation both ways and requires the same findings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from naer.messaging.xhtml import narrative_problem

Rule = Callable[[Any], bool | None]
EXPRESSIONS = {
    "dom-2": "contained.contained.empty()",
    "dom-4": "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    "dom-5": "contained.meta.security.empty()",
    "dom-6": "text.`div`.exists()",
    "ext-1": "extension.exists() != value.exists()",
    "txt-1": "htmlChecks()",
    "txt-2": "htmlChecks()",
    "bdl-1": "total.empty() or (type = 'searchset') or (type = 'history')",
    "bdl-2": "entry.search.empty() or (type = 'searchset')",
    "bdl-3": "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or "
    "%resource.type = 'history'))",
    "bdl-4": "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = "
    "'transaction-response' or %resource.type = 'history'))",
    "bdl-5": "resource.exists() or request.exists() or response.exists()",
    "bdl-7": "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId)"
    ".isDistinct()",
    "bdl-8": "fullUrl.contains('/_history/').not()",
    "bdl-9": "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
    "bdl-10": "type = 'document' implies (timestamp.hasValue())",
    "bdl-11": "type = 'document' implies entry.first().resource.is(Composition)",
    "bdl-12": "type = 'message' implies entry.first().resource.is(MessageHeader)",
}


def _entries(node: Any) -> list[Any]:
    found = node.get("entry") if isinstance(node, dict) else None
    return found if isinstance(found, list) else []


def _no_contained(node: Any) -> bool | None:
    return True if isinstance(node, dict) and "contained" not in node else None


def _dom_6(node: Any) -> bool | None:
    text = node.get("text") if isinstance(node, dict) else None
    return isinstance(text, dict) and "div" in text


def _ext_1(node: Any) -> bool | None:
    if not isinstance(node, dict):
        return None
    has_value = any(key.startswith("value") and key[5:6].isupper() for key in node)
    return bool(node.get("extension")) != has_value


def _html(node: Any) -> bool | None:
    return isinstance(node, str) and narrative_problem(node) is None


def _typed(node: Any) -> str | None:
    kind = node.get("type") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) else None


def _bdl_1(node: Any) -> bool | None:
    if "total" not in node:
        return True
    kind = _typed(node)
    return None if kind is None else kind in ("searchset", "history")


def _bdl_2(node: Any) -> bool | None:
    if not any(isinstance(e, dict) and "search" in e for e in _entries(node)):
        return True
    kind = _typed(node)
    return None if kind is None else kind == "searchset"


def _all_entries(element: str, kinds: tuple[str, ...]) -> Rule:
    def rule(node: Any) -> bool | None:
        kind = _typed(node)
        if kind is None:
            return None
        return all(isinstance(e, dict) and (element in e) == (kind in kinds) for e in _entries(node))

    return rule


def _bdl_5(node: Any) -> bool | None:
    return isinstance(node, dict) and any(key in node for key in ("resource", "request", "response"))


def _bdl_7(node: Any) -> bool | None:
    kind = _typed(node)
    if kind is None:
        return None
    if kind == "history":
        return True
    keys = []
    for entry in _entries(node):
        if not isinstance(entry, dict) or not isinstance(entry.get("fullUrl"), str):
            continue
        resource = entry.get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        keys.append(entry["fullUrl"] + (version if isinstance(version, str) else ""))
    return len(keys) == len(set(keys))


def _bdl_8(node: Any) -> bool | None:
    url = node.get("fullUrl") if isinstance(node, dict) else None
    return "/_history/" not in url if isinstance(url, str) else None


def _not_document(node: Any) -> bool | None:
    kind = _typed(node)
    return True if kind is not None and kind != "document" else None


def _bdl_12(node: Any) -> bool | None:
    kind = _typed(node)
    if kind is None:
        return None
    if kind != "message":
        return True
    entries = _entries(node)
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    return isinstance(first, dict) and first.get("resourceType") == "MessageHeader"


RULES: dict[str, Rule] = {
    "dom-2": _no_contained,
    "dom-4": _no_contained,
    "dom-5": _no_contained,
    "dom-6": _dom_6,
    "ext-1": _ext_1,
    "txt-1": _html,
    "txt-2": _html,
    "bdl-1": _bdl_1,
    "bdl-2": _bdl_2,
    "bdl-3": _all_entries("request", ("batch", "transaction", "history")),
    "bdl-4": _all_entries("response", ("batch-response", "transaction-response", "history")),
    "bdl-5": _bdl_5,
    "bdl-7": _bdl_7,
    "bdl-8": _bdl_8,
    "bdl-9": _not_document,
    "bdl-10": _not_document,
    "bdl-11": _not_document,
    "bdl-12": _bdl_12,
}
DOM_3 = "contained.where("  # dom-3's long expression starts so; vacuous without contained resources


def answer(key: str, expression: str, node: Any) -> bool | None:
    """The invariant's answer for ``node``, or None when the FHIRPath must be evaluated."""
    if key == "dom-3" and expression.startswith(DOM_3):
        return _no_contained(node)
    rule = RULES.get(key)
    if rule is None or EXPRESSIONS.get(key) != expression:
        return None
    return rule(node)
