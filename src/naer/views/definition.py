"""Load and check a ViewDefinition before anything runs: a clear message names the view and the place."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naer.errors import UserError
from naer.views.fhirpath import FhirPathSyntaxError, parse


class ViewDefinitionError(UserError):
    """A ViewDefinition that does not follow the SQL on FHIR v2 structure."""


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESOURCE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SELECT_KEYS = {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"}
_COLUMN_KEYS = {"name", "path", "type", "collection", "description", "tag"}


@dataclass(frozen=True)
class Column:
    name: str
    path: str
    type: str | None
    collection: bool


@dataclass(frozen=True)
class SelectNode:
    columns: list[Column]
    selects: list[SelectNode]
    union_all: list[SelectNode]
    for_each: str | None
    for_each_or_null: str | None
    repeat: list[str] | None


@dataclass(frozen=True)
class View:
    label: str  # how messages name the view: its name, title or file
    name: str | None
    resource: str
    root: SelectNode
    where: list[str]
    constants: list[dict[str, Any]]
    raw: dict[str, Any]


def _fail(label: str, where: str, message: str) -> ViewDefinitionError:
    return ViewDefinitionError(f"view {label}, {where}: {message}" if where else f"view {label}: {message}")


def _string(value: object, label: str, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(label, where, f"{what} must be a non-empty string, not {json.dumps(value)}")
    return value


def _list(value: object, label: str, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(label, where, f"{what} must be a list, not {json.dumps(value)[:60]}")
    return value


def _syntax(text: str, label: str, where: str) -> None:
    try:
        parse(text)
    except FhirPathSyntaxError as error:
        raise _fail(label, where, str(error)) from None


def _select(raw: object, label: str, where: str) -> SelectNode:
    if not isinstance(raw, dict):
        raise _fail(label, where, f"a select must be an object, not {json.dumps(raw)[:60]}")
    unknown = set(raw) - _SELECT_KEYS
    if unknown:
        raise _fail(label, where, f"unknown key(s) {', '.join(sorted(unknown))} in a select")
    iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in raw]
    if len(iterators) > 1:
        raise _fail(label, where, f"a select can have only one of {', '.join(iterators)}")
    columns: list[Column] = []
    for i, col in enumerate(_list(raw.get("column", []), label, where, "column")):
        at = f"{where} column {i + 1}"
        if not isinstance(col, dict):
            raise _fail(label, at, "a column must be an object")
        unknown = set(col) - _COLUMN_KEYS
        if unknown:
            raise _fail(label, at, f"unknown key(s) {', '.join(sorted(unknown))} in a column")
        if "name" not in col:
            raise _fail(label, at, "the column has no name")
        name = _string(col["name"], label, at, "name")
        if not _NAME.match(name):
            raise _fail(label, at, f"the column name {name!r} must match {_NAME.pattern} (a database name)")
        at = f"column {name!r}"
        path = _string(col.get("path"), label, at, "path")
        ctype = col.get("type")
        if ctype is not None:
            ctype = _string(ctype, label, at, "type")
        collection = col.get("collection", False)
        if not isinstance(collection, bool):
            raise _fail(label, at, "collection must be true or false")
        columns.append(Column(name, path, ctype, collection))
    selects = [
        _select(s, label, f"{where} select {i + 1}")
        for i, s in enumerate(_list(raw.get("select", []), label, where, "select"))
    ]
    union = [
        _select(s, label, f"{where} unionAll {i + 1}")
        for i, s in enumerate(_list(raw.get("unionAll", []), label, where, "unionAll"))
    ]
    if "unionAll" in raw and not union:
        raise _fail(label, where, "unionAll must not be empty")
    for_each = _string(raw["forEach"], label, where, "forEach") if "forEach" in raw else None
    or_null = _string(raw["forEachOrNull"], label, where, "forEachOrNull") if "forEachOrNull" in raw else None
    repeat = None
    if "repeat" in raw:
        repeat = [
            _string(p, label, where, "each repeat path") for p in _list(raw["repeat"], label, where, "repeat")
        ]
        if not repeat:
            raise _fail(label, where, "repeat must list at least one path")
    for text in [p for p in (for_each, or_null) if p] + (repeat or []):
        _syntax(text, label, where)
    for col in columns:
        _syntax(col.path, label, f"column {col.name!r}")
    if not columns and not selects and not union:
        raise _fail(label, where, "a select needs a column, select or unionAll")
    return SelectNode(columns, selects, union, for_each, or_null, repeat)


def parse_view(raw: object, label: str = "(unnamed)") -> View:
    """Check the structure of a ViewDefinition (as parsed JSON) and return it in a form the compiler reads."""
    if not isinstance(raw, dict):
        raise ViewDefinitionError(f"view {label}: a ViewDefinition must be a JSON object")
    name = raw.get("name")
    label = str(name or raw.get("title") or label)
    if raw.get("resourceType", "ViewDefinition") != "ViewDefinition":
        raise _fail(label, "", f"resourceType must be ViewDefinition, not {raw.get('resourceType')!r}")
    if "resource" not in raw:
        raise _fail(label, "", "the view does not say which resource it is about ('resource')")
    resource = _string(raw["resource"], label, "", "resource")
    if not _RESOURCE.match(resource):
        raise _fail(label, "", f"resource {resource!r} is not a FHIR resource type")
    selects = _list(raw.get("select"), label, "", "select") if "select" in raw else []
    if not selects:
        raise _fail(label, "", "the view has no select")
    root = SelectNode(
        [], [_select(s, label, f"select {i + 1}") for i, s in enumerate(selects)], [], None, None, None
    )
    where: list[str] = []
    for i, w in enumerate(_list(raw.get("where", []), label, "", "where")):
        if not isinstance(w, dict) or "path" not in w:
            raise _fail(label, f"where {i + 1}", "each where needs a path")
        where.append(_string(w["path"], label, f"where {i + 1}", "path"))
        _syntax(where[-1], label, f"where {i + 1}")
    constants: list[dict[str, Any]] = []
    for i, c in enumerate(_list(raw.get("constant", []), label, "", "constant")):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not _NAME.match(c["name"]):
            raise _fail(label, f"constant {i + 1}", "each constant needs a name that is a valid identifier")
        if sum(1 for k in c if k.startswith("value")) != 1:
            raise _fail(label, f"constant {c['name']!r}", "a constant needs exactly one value[x]")
        constants.append(c)
    return View(label, name if isinstance(name, str) else None, resource, root, where, constants, raw)


def load_view(path: Path) -> View:
    """Read a ViewDefinition from a JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ViewDefinitionError(f"no view file {path}") from None
    except OSError as error:
        raise ViewDefinitionError(f"cannot read {path}: {error.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ViewDefinitionError(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    return parse_view(raw, path.stem)
