"""Compile a parsed FHIRPath expression to a DuckDB SQL expression over JSON.

Every FHIRPath value is one of three shapes at compile time:

* ``json``: one JSON value or SQL NULL (the empty collection); kept as a base plus a JSON path so that a chain
  such as ``period.start`` becomes a single ``json_extract``;
* ``list``: a ``JSON[]`` list (a collection that may hold several items), likewise kept as base plus a
  path with ``[*]`` steps while it can be;
* ``val``: a typed SQL value (VARCHAR, BOOLEAN, BIGINT, DOUBLE) or NULL, from literals, operators and
  functions;
* ``sval`` and ``slist``: one value or a list of values of a top-level element that DuckDB's reader parsed
  into a typed STRUCT (only the sub-elements the view uses). Reading straight into typed columns saves a
  second JSON parse per access, which is most of a view's cost (docs/performance.md). Where such a value is
  used in a way only the JSON shapes support, the compiler raises ``NeedsJson`` and ``compile_view`` compiles
  again with that element read as JSON, so the typed path is an optimisation that never changes a result.

The FHIR type of each value is tracked from the R4 structure (``views/schema.py``); where it is unknown (a
resource type the models do not know, or the items of ``contained``) the compiler falls back to testing shapes
at run time. Comparisons between collections of more than one item take the first item (FHIRPath would raise);
dates compare as ISO strings, which is exact when both sides have the same precision and time zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal as Lit

from naer.errors import UserError
from naer.views import fhirpath as fp
from naer.views.schema import (
    DATE_TYPES,
    INTEGER_TYPES,
    NUMBER_TYPES,
    PRIMITIVE_TYPES,
    STRING_TYPES,
    Choice,
    Element,
    elements,
    is_resource_type,
)

Kind = Lit["json", "list", "val", "root", "choice", "sval", "slist"]
STRUCT_KINDS = ("sval", "slist")
# One step into a typed STRUCT: (JSON key, FHIR type, repeating).
Step = tuple[str, str | None, bool]


class ViewCompileError(UserError):
    """A ViewDefinition that cannot be compiled (unknown function, element that does not exist, ...)."""


class NoSuchElementError(ViewCompileError):
    """A path into an element the FHIR type does not have (``repeat`` treats it as empty)."""


class NeedsJson(Exception):
    """Top-level elements read as typed STRUCTs that an expression needs as JSON: compile again with these."""

    def __init__(self, keys: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(keys)))
        self.keys = keys


@dataclass(frozen=True)
class Expr:
    kind: Kind
    type: str | None  # FHIR type of the items; None when unknown
    sql: str = ""  # for val, and for json/list without a pending path
    base: str | None = None  # json/list: SQL of a JSON value the pending path applies to
    path: str | None = None  # json/list: JSON path relative to base ("$", "$.a[*].b")
    choice: Choice | None = None  # kind "choice": a choice element (value[x]) not yet narrowed by ofType
    parent: Expr | None = None  # kind "choice": what the choice element was read from
    sqltype: str = "JSON"  # for val
    root_key: str | None = None  # sval/slist: the top-level key read as a STRUCT this value comes from
    trail: tuple[Step, ...] = ()  # sval/slist: the steps from that key down to this value
    json_needs: frozenset[str] = frozenset()  # keys to read as JSON before this can be used as JSON


@dataclass
class Scope:
    """What an expression can see: the resource row, constants, the row index and lambda-variable names."""

    resource_type: str
    root_fields: dict[str, str]  # top-level JSON keys read from the file -> SQL type (filled while compiling)
    constants: dict[str, Expr]
    row_index: str = "0"
    counter: list[int] = field(default_factory=lambda: [0])
    structs: bool = False  # read top-level elements as typed STRUCTs where the view allows
    json_keys: frozenset[str] = frozenset()  # top-level keys that must be read as JSON all the same
    struct_roots: dict[str, Element] = field(default_factory=dict)  # keys read as STRUCTs
    trails: set[tuple[str, tuple[Step, ...]]] = field(default_factory=set)  # (key, steps) used below them

    def fresh(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}{self.counter[0]}"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path_key(name: str) -> str:
    return (
        f".{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else '."' + name.replace('"', '\\"') + '"'
    )


def require_json(e: Expr) -> None:
    """Raise NeedsJson when ``e`` comes from a top-level element read as a typed STRUCT."""
    if e.json_needs:
        raise NeedsJson(e.json_needs)


def sql_of(e: Expr) -> str:
    """The SQL of a json/list/val expression (a list is JSON[], never NULL)."""
    require_json(e)
    if e.kind == "val":
        return e.sql
    if e.kind == "root":
        raise ViewCompileError("the resource itself cannot be used as a value here")
    if e.kind == "choice":
        e = choice_any(e)
    if e.base is None:
        return e.sql
    if e.path == "$":
        return e.base if e.kind == "json" else f"coalesce({e.base}, []::JSON[])"
    extracted = f"json_extract({e.base}, {sql_string(e.path or '$')})"
    return extracted if e.kind == "json" else f"coalesce({extracted}, []::JSON[])"


def as_list(e: Expr) -> str:
    require_json(e)
    if e.kind == "list":
        return sql_of(e)
    if e.kind == "json" or e.kind == "choice":
        s = sql_of(e)
        return f"(CASE WHEN {s} IS NULL THEN []::JSON[] ELSE [{s}] END)"
    if e.kind == "val":
        return f"(CASE WHEN {e.sql} IS NULL THEN []::JSON[] ELSE [to_json({e.sql})] END)"
    raise ViewCompileError("the resource itself cannot be used as a collection here")


def first_json(e: Expr) -> Expr:
    """The first item as a single JSON value (FHIRPath's singleton evaluation)."""
    require_json(e)
    if e.kind == "json":
        return e
    if e.kind == "choice":
        return choice_any(e)
    if e.kind == "list":
        if e.base is not None and e.path is not None and e.path.endswith("[*]") and e.path.count("[*]") == 1:
            return replace(e, kind="json", path=e.path[:-3] + "[0]")
        return Expr("json", e.type, sql=f"({sql_of(e)})[1]")
    if e.kind == "val":
        return Expr("json", e.type, sql=f"to_json({e.sql})")
    raise ViewCompileError("the resource itself cannot be used as a value here")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def leaf_type(fhir_type: str | None) -> str:
    """The DuckDB type a primitive is read as inside a STRUCT."""
    sqltype = sql_type_of(fhir_type)
    return "VARCHAR" if sqltype == "JSON" else sqltype


def struct_type(element: Element, trails: list[tuple[Step, ...]]) -> str:
    """The DuckDB type that reads ``element`` with just the sub-elements named in ``trails``."""
    if element.type in PRIMITIVE_TYPES:
        base = leaf_type(element.type)
    else:
        children: dict[str, Element] = {}
        below: dict[str, list[tuple[Step, ...]]] = {}
        for trail in trails:
            key, fhir_type, many = trail[0]
            children[key] = Element(key, fhir_type, many)
            below.setdefault(key, [])
            if len(trail) > 1:
                below[key].append(trail[1:])
        # A complex element used only as a whole (exists()) still needs one field for DuckDB to read it.
        parts = [f"{_ident(k)} {struct_type(children[k], below[k])}" for k in sorted(children)]
        base = f"STRUCT({', '.join(parts or ['id VARCHAR'])})"
    return base + ("[]" if element.many else "")


def _structable(found: Element) -> bool:
    """Whether an element can be read as a typed value: a primitive or a data type the models know."""
    if found.type in PRIMITIVE_TYPES:
        return True
    return found.type not in (None, "Resource") and elements(found.type) is not None


def struct_first(e: Expr) -> Expr:
    if e.kind != "slist":
        return e
    unfiltered = _without_null_filter(e.sql)
    # the first non-null item, without building the filtered list (one lambda and one list less per row)
    sql = f"list_any_value({unfiltered})" if unfiltered is not None else f"({e.sql})[1]"
    return replace(e, kind="sval", sql=sql)


_NULL_FILTER = re.compile(r", (x\d+) -> \1 IS NOT NULL\)$")


def _without_null_filter(sql: str) -> str | None:
    """``M`` when ``sql`` is exactly ``list_filter(M, x -> x IS NOT NULL)`` (the whole expression, its
    parentheses balanced outside string literals), else None."""
    tail = _NULL_FILTER.search(sql)
    if not sql.startswith("list_filter(") or tail is None:
        return None
    depth, quoted = 0, False
    for i, ch in enumerate(sql):
        if ch == "'":
            quoted = not quoted  # a doubled '' inside a literal toggles twice
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0 and i != len(sql) - 1:
                return None  # the first list_filter( closes before the end: not one call
    return sql[len("list_filter(") : tail.start()]


def struct_list(e: Expr, scope: Scope) -> str:
    """A STRUCT value or list as a list (NULL stands for the empty list)."""
    if e.kind == "slist":
        return e.sql
    x = scope.fresh("x")
    return f"list_filter([{e.sql}], {x} -> {x} IS NOT NULL)"


def struct_len(e: Expr) -> str:
    if e.kind == "slist":
        return f"coalesce(len({e.sql}), 0)"
    return f"(CASE WHEN {e.sql} IS NULL THEN 0 ELSE 1 END)"


def _struct_root(key: str, found: Element, scope: Scope) -> Expr:
    scope.struct_roots[key] = found
    scope.trails.add((key, ()))
    return Expr(
        "slist" if found.many else "sval",
        found.type,
        sql="r." + _ident(key),
        root_key=key,
        json_needs=frozenset({key}),
    )


def _struct_step(e: Expr, found: Element, scope: Scope) -> Expr:
    """``e.name`` inside a STRUCT: a field access, mapped over lists and flattened."""
    if not _structable(found):
        raise NeedsJson(e.json_needs)
    assert e.root_key is not None
    trail = (*e.trail, (found.name, found.type, found.many))
    scope.trails.add((e.root_key, trail))
    key = sql_string(found.name)
    kind: Kind = "slist" if found.many or e.kind == "slist" else "sval"
    if e.kind == "sval":
        sql = f"struct_extract({e.sql}, {key})"
    else:
        x = _fresh_var(scope)
        mapped = f"list_transform({e.sql}, {x} -> struct_extract({x}, {key}))"
        sql = f"flatten({mapped})" if found.many else f"list_filter({mapped}, {x} -> {x} IS NOT NULL)"
        if found.many and "->" not in e.sql and len(e.sql) < 300:
            # Most lists of CodeableConcepts hold one: taking its codings directly costs half of flatten().
            sql = f"(CASE WHEN len({e.sql}) = 1 THEN struct_extract(({e.sql})[1], {key}) ELSE {sql} END)"
    return Expr(kind, found.type, sql=sql, root_key=e.root_key, trail=trail, json_needs=e.json_needs)


def sql_type_of(fhir_type: str | None) -> str:
    if fhir_type in STRING_TYPES or fhir_type in DATE_TYPES:
        return "VARCHAR"
    if fhir_type == "boolean":
        return "BOOLEAN"
    if fhir_type in INTEGER_TYPES:
        return "BIGINT"
    if fhir_type == "decimal":
        return "DOUBLE"
    return "JSON"


def json_to(json_sql: str, sqltype: str) -> str:
    """Convert one JSON value to a typed SQL value (NULL stays NULL; a wrongly shaped value becomes NULL)."""
    if sqltype == "VARCHAR":
        return f"json_extract_string({json_sql}, '$')"
    if sqltype == "JSON":
        return json_sql
    return f"TRY_CAST(json_extract_string({json_sql}, '$') AS {sqltype})"


def as_value(e: Expr, want: str | None = None) -> Expr:
    """A typed SQL value of the first item; ``want`` forces the SQL type (for comparing with a known type)."""
    if e.kind == "val":
        if want and want != e.sqltype and e.sqltype == "JSON":
            return Expr("val", e.type, sql=json_to(e.sql, want), sqltype=want)
        return e
    if e.kind in STRUCT_KINDS:
        if e.type not in PRIMITIVE_TYPES:
            require_json(e)
        one, leaf = struct_first(e), leaf_type(e.type)
        sqltype = want or leaf
        if sqltype == "JSON":
            require_json(e)
        sql = one.sql if sqltype == leaf else f"TRY_CAST({one.sql} AS {sqltype})"
        return Expr("val", e.type, sql=sql, sqltype=sqltype)
    one = first_json(e)
    sqltype = want or sql_type_of(one.type)
    if one.base is not None and sqltype == "VARCHAR" and one.kind == "json":
        return Expr(
            "val",
            one.type,
            sql=f"json_extract_string({one.base}, {sql_string(one.path or '$')})",
            sqltype=sqltype,
        )
    return Expr("val", one.type, sql=json_to(sql_of(one), sqltype), sqltype=sqltype)


def as_bool(e: Expr, what: str) -> str:
    if e.type is not None and e.type != "boolean" and e.kind != "root":
        raise ViewCompileError(f"{what} must be boolean, but it is {e.type}")
    if e.kind == "root":
        return "TRUE"
    v = as_value(e, "BOOLEAN")
    return v.sql


def choice_any(e: Expr) -> Expr:
    """A choice element used without ofType: whichever variant is present (its type is then unknown)."""
    assert e.choice is not None and e.parent is not None
    require_json(e)
    keys = list(e.choice.variants.values())
    parent = e.parent
    if parent.kind == "root":  # its variants are columns of the row
        columns = ", ".join('r."' + k + '"' for k in keys)
        return _guard(parent, Expr("json", None, sql=f"coalesce({columns})"))
    if parent.kind == "json":
        one = sql_of(parent)
        parts = ", ".join(f"json_extract({one}, {sql_string('$' + _path_key(k))})" for k in keys)
        return Expr("json", None, sql=f"coalesce({parts})")
    x = "xc"
    parts = ", ".join(f"json_extract({x}, {sql_string('$' + _path_key(k))})" for k in keys)
    return Expr(
        "list",
        None,
        sql=f"list_filter(list_transform({sql_of(parent)}, {x} -> coalesce({parts})), "
        f"{x} -> {x} IS NOT NULL)",
    )


def _fresh_var(scope: Scope) -> str:
    return scope.fresh("x")


def navigate(e: Expr, name: str, scope: Scope) -> Expr:
    """``e.name``: one step down the tree, typed where the structure is known."""
    if e.kind == "root":
        return _root_member(e, name, scope)
    if e.kind == "val":
        raise ViewCompileError(f"cannot read '{name}' of a computed value")
    if e.kind == "choice":
        raise ViewCompileError(
            f"use ofType() on '{e.choice.name if e.choice else ''}' before reading '{name}'"
        )
    info = elements(e.type) if e.type and e.type not in PRIMITIVE_TYPES else None
    if e.type in PRIMITIVE_TYPES:
        if name in ("id", "extension"):
            raise ViewCompileError(f"extensions and ids of primitive values ('{name}') are not supported")
        raise NoSuchElementError(f"{e.type} has no element '{name}'")
    if info is None:
        require_json(e)
        return _dynamic_member(e, name, scope)
    found = info.get(name)
    if found is None:
        raise NoSuchElementError(f"{e.type} has no element '{name}'")
    if isinstance(found, Choice):
        return Expr("choice", None, choice=found, parent=e, json_needs=e.json_needs)
    return _struct_step(e, found, scope) if e.kind in STRUCT_KINDS else _step(e, found, scope)


def _step(e: Expr, found: Element, scope: Scope) -> Expr:
    step = _path_key(found.name) + ("[*]" if found.many else "")
    many = found.many or e.kind == "list"
    kind: Kind = "list" if many else "json"
    if e.base is not None and e.path is not None:
        return Expr(kind, found.type, base=e.base, path=e.path + step)
    if e.kind == "json":
        return Expr(kind, found.type, base=sql_of(e), path="$" + step)
    x = _fresh_var(scope)
    if found.many:
        inner = f"coalesce(json_extract({x}, {sql_string('$' + step)}), []::JSON[])"
        return Expr("list", found.type, sql=f"flatten(list_transform({sql_of(e)}, {x} -> {inner}))")
    inner = f"json_extract({x}, {sql_string('$' + step)})"
    return Expr(
        "list",
        found.type,
        sql=f"list_filter(list_transform({sql_of(e)}, {x} -> {inner}), {x} -> {x} IS NOT NULL)",
    )


def _items(json_sql: str) -> str:
    """Run-time shape test: the items of a JSON value that may be an array, a single value or missing."""
    return (
        f"(CASE WHEN {json_sql} IS NULL THEN []::JSON[] WHEN json_type({json_sql}) = 'ARRAY' "
        f"THEN json_extract({json_sql}, '$[*]') ELSE [{json_sql}] END)"
    )


def _dynamic_member(e: Expr, name: str, scope: Scope) -> Expr:
    key = sql_string("$" + _path_key(name))
    if e.kind == "json":
        return Expr("list", None, sql=_items(f"json_extract({sql_of(e)}, {key})"))
    x = _fresh_var(scope)
    return Expr(
        "list",
        None,
        sql=f"flatten(list_transform({sql_of(e)}, {x} -> {_items(f'json_extract({x}, {key})')}))",
    )


def _root_member(e: Expr, name: str, scope: Scope) -> Expr:
    info = elements(scope.resource_type)
    column = 'r."' + name.replace('"', '""') + '"'
    if info is None:  # a resource type the models do not know: read the key and test its shape at run time
        scope.root_fields[name] = "JSON"
        out = Expr("list", None, sql=_items(column))
    else:
        found = info.get(name)
        if found is None:
            raise NoSuchElementError(f"{scope.resource_type} has no element '{name}'")
        if isinstance(found, Choice):
            # Read as JSON, every variant is read, so the choice works with or without ofType; read as
            # STRUCTs, ofType() reads its one variant, and use without ofType asks for JSON.
            pending = frozenset(k for k in found.variants.values() if k not in scope.json_keys)
            if not (scope.structs and pending):
                for key in found.variants.values():
                    scope.root_fields[key] = "JSON"
                pending = frozenset()
            return Expr("choice", None, choice=found, parent=e, json_needs=pending)
        if not found.many and (found.type in STRING_TYPES or found.type in DATE_TYPES):
            scope.root_fields[name] = "VARCHAR"
            out = Expr("val", found.type, sql=column, sqltype="VARCHAR")
        elif scope.structs and name not in scope.json_keys and _structable(found):
            out = _struct_root(name, found, scope)
        else:
            scope.root_fields[name] = "JSON"
            out = Expr(
                "list" if found.many else "json", found.type, base=column, path="$[*]" if found.many else "$"
            )
    return _guard(e, out)


def _guard(root: Expr, e: Expr) -> Expr:
    """Apply a ``where()`` on the resource itself (kept in ``root.sql``) to a value read from it."""
    if not root.sql:
        return e
    if e.kind in STRUCT_KINDS:  # a NULL list is the empty list
        return replace(e, sql=f"(CASE WHEN {root.sql} THEN {e.sql} END)")
    if e.kind == "list":
        return Expr("list", e.type, sql=f"(CASE WHEN {root.sql} THEN {sql_of(e)} ELSE []::JSON[] END)")
    kind: Kind = "val" if e.kind == "val" else "json"
    return Expr(kind, e.type, sql=f"(CASE WHEN {root.sql} THEN {sql_of(e)} END)", sqltype=e.sqltype)


def _choice_column(e: Expr, key: str, fhir_type: str | None, scope: Scope) -> Expr:
    """The variant ``key`` (e.g. valueQuantity) of a choice element."""
    parent = e.parent
    assert parent is not None
    variant = Element(key, fhir_type, False)
    if parent.kind == "root":  # a top-level choice: its variants are columns of the row
        if scope.structs and key not in scope.json_keys and _structable(variant):
            return _guard(parent, _struct_root(key, variant, scope))
        scope.root_fields[key] = "JSON"
        return _guard(parent, Expr("json", fhir_type, base='r."' + key + '"', path="$"))
    if parent.kind in STRUCT_KINDS:
        return _struct_step(parent, variant, scope)
    return _step(parent, variant, scope)


_JSON_TYPE_OF = {
    "boolean": ("BOOLEAN",),
    "integer": ("BIGINT", "UBIGINT"),
    "decimal": ("DOUBLE", "BIGINT", "UBIGINT"),
    "string": ("VARCHAR",),
}


def of_type(e: Expr, type_name: str, scope: Scope) -> Expr:
    if e.kind == "choice":
        assert e.choice is not None
        key = e.choice.variants.get(type_name)
        if key is None:
            raise ViewCompileError(
                f"'{e.choice.name}' cannot be {type_name}; its types are {', '.join(e.choice.variants)}"
            )
        return _choice_column(e, key, type_name, scope)
    if e.kind == "root":
        if type_name == scope.resource_type:
            return e
        return Expr("val", None, sql="NULL", sqltype="BOOLEAN")
    if e.type is not None:
        if e.type == type_name or (type_name in ("Resource", "DomainResource") and e.type == "Resource"):
            return e
        return Expr("list", type_name, sql="[]::JSON[]")
    # Unknown type: test the JSON shape (primitives) or resourceType (resources) at run time.
    x = _fresh_var(scope)
    if is_resource_type(type_name):
        test = f"json_extract_string({x}, '$.resourceType') = {sql_string(type_name)}"
    elif type_name in _JSON_TYPE_OF:
        names = ", ".join(sql_string(t) for t in _JSON_TYPE_OF[type_name])
        test = f"json_type({x}) IN ({names})"
    elif type_name in STRING_TYPES or type_name in DATE_TYPES:
        test = f"json_type({x}) = 'VARCHAR'"
    else:
        test = f"json_type({x}) = 'OBJECT'"
    return Expr("list", type_name, sql=f"list_filter({as_list(e)}, {x} -> {test})")


def _literal(node: fp.Literal) -> Expr:
    if node.value is None:
        return Expr("list", None, sql="[]::JSON[]")
    if isinstance(node.value, bool):
        return Expr("val", "boolean", sql="TRUE" if node.value else "FALSE", sqltype="BOOLEAN")
    if isinstance(node.value, int):
        return Expr("val", "integer", sql=str(node.value), sqltype="BIGINT")
    if isinstance(node.value, float):
        return Expr("val", "decimal", sql=f"{node.value!r}::DOUBLE", sqltype="DOUBLE")
    return Expr("val", node.type, sql=sql_string(node.value), sqltype="VARCHAR")


def _compare_types(left: Expr, right: Expr) -> tuple[Expr, Expr]:
    lt = left.type if left.kind != "val" else (left.type or None)
    rt = right.type if right.kind != "val" else (right.type or None)
    want: str | None = None
    for t in (lt, rt):
        if t is not None and sql_type_of(t) != "JSON":
            want = sql_type_of(t)
            break
    if lt in NUMBER_TYPES or rt in NUMBER_TYPES:
        want = "DOUBLE"
    lv = as_value(left, want)
    rv = as_value(right, want)
    return lv, rv


_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/", "div": "//", "mod": "%"}


def _binary(node: fp.Binary, focus: Expr, scope: Scope) -> Expr:
    left = compile_node(node.left, focus, scope)
    right = compile_node(node.right, focus, scope)
    op = node.op
    if op in ("and", "or", "xor", "implies"):
        a = as_bool(left, f"the left side of '{op}'")
        b = as_bool(right, f"the right side of '{op}'")
        sql = {
            "and": f"({a} AND {b})",
            "or": f"({a} OR {b})",
            "xor": f"({a} <> {b})",
            "implies": f"(CASE WHEN {a} IS FALSE THEN TRUE WHEN {b} IS TRUE THEN TRUE "
            f"WHEN {a} IS NULL OR {b} IS NULL THEN NULL ELSE FALSE END)",
        }[op]
        return Expr("val", "boolean", sql=sql, sqltype="BOOLEAN")
    if op in ("=", "!=", "<", ">", "<=", ">=", "~", "!~"):
        lv, rv = _compare_types(left, right)
        sqlop = {"~": "=", "!~": "<>", "!=": "<>"}.get(op, op)
        if op in ("~", "!~") and lv.sqltype == "VARCHAR":
            return Expr(
                "val",
                "boolean",
                sql=f"(lower(trim({lv.sql})) {sqlop} lower(trim({rv.sql})))",
                sqltype="BOOLEAN",
            )
        return Expr("val", "boolean", sql=f"({lv.sql} {sqlop} {rv.sql})", sqltype="BOOLEAN")
    if op == "&":
        lv, rv = as_value(left, "VARCHAR"), as_value(right, "VARCHAR")
        return Expr(
            "val", "string", sql=f"(coalesce({lv.sql}, '') || coalesce({rv.sql}, ''))", sqltype="VARCHAR"
        )
    if op == "+" and (left.type in STRING_TYPES or right.type in STRING_TYPES):
        lv, rv = as_value(left, "VARCHAR"), as_value(right, "VARCHAR")
        return Expr("val", "string", sql=f"({lv.sql} || {rv.sql})", sqltype="VARCHAR")
    if op in _ARITH:
        integer = left.type in INTEGER_TYPES and right.type in INTEGER_TYPES and op != "/"
        want = "BIGINT" if integer else "DOUBLE"
        lv, rv = as_value(left, want), as_value(right, want)
        return Expr(
            "val", "integer" if integer else "decimal", sql=f"({lv.sql} {_ARITH[op]} {rv.sql})", sqltype=want
        )
    if op == "|":
        return Expr(
            "list",
            left.type if left.type == right.type else None,
            sql=f"list_distinct(list_concat({as_list(left)}, {as_list(right)}))",
        )
    if op in ("in", "contains"):
        item, coll = (left, right) if op == "in" else (right, left)
        x = _fresh_var(scope)
        iv = as_value(item)
        ct = sql_type_of(coll.type) if coll.type else iv.sqltype
        return Expr(
            "val",
            "boolean",
            sql=f"CASE WHEN {iv.sql} IS NULL THEN NULL ELSE list_contains(list_transform({as_list(coll)}, "
            f"{x} -> {json_to(x, ct)}), {iv.sql}) END",
            sqltype="BOOLEAN",
        )
    raise ViewCompileError(f"the operator '{op}' is not supported")


def _type_arg(node: fp.Node, fn: str) -> str:
    if isinstance(node, fp.Member) and node.base is None:
        return node.name
    base = node.base if isinstance(node, fp.Member) else None
    if (
        isinstance(node, fp.Member)
        and isinstance(base, fp.Member)
        and base.base is None
        and base.name in ("FHIR", "System")
    ):
        return node.name
    raise ViewCompileError(f"{fn}() takes a type name, such as {fn}(Quantity)")


def _args(node: fp.Call, low: int, high: int) -> None:
    if not low <= len(node.args) <= high:
        count = str(low) if low == high else f"{low} to {high}"
        raise ViewCompileError(f"{node.name}() takes {count} argument(s), not {len(node.args)}")


def _lambda(e: Expr, arg: fp.Node, scope: Scope, build: Callable[[str, str, str], str]) -> Expr:
    """``e.fn(arg)`` where arg is evaluated on each item (where, exists(criteria), all); ``build`` gets the
    list, the item variable and the condition on it."""
    if e.kind == "root":
        cond = as_bool(compile_node(arg, e, scope), "the criteria")
        guard = f"({e.sql}) AND ({cond})" if e.sql else cond
        return Expr("root", None, sql=f"coalesce({guard}, FALSE)")
    x = _fresh_var(scope)
    if e.kind in STRUCT_KINDS:
        item = replace(e, kind="sval", sql=x)
        cond = as_bool(compile_node(arg, item, scope), "the criteria")
        return replace(e, kind="slist", sql=build(struct_list(e, scope), x, cond))
    item = Expr("json", e.type, base=x, path="$")
    if e.kind == "choice":
        item = Expr("json", None, sql=x)
    cond = as_bool(compile_node(arg, item, scope), "the criteria")
    return Expr("list", e.type, sql=build(as_list(e), x, cond))


def _keep(lst: str, x: str, cond: str) -> str:
    """The items of a list that meet a condition (where(), exists(criteria))."""
    return f"list_filter({lst}, {x} -> {cond})"


def _count(e: Expr) -> str:
    return struct_len(e) if e.kind in STRUCT_KINDS else f"len({as_list(e)})"


def _reference_key(ref: str, wanted: str | None) -> str:
    """The id of a ``Type/id`` reference (relative, absolute or versioned); NULL for a conditional or
    contained reference, or one to another type than ``wanted``.

    The common ``Type/id`` form takes a fast path of a prefix test and one substring; the rest is split on
    ``/``, with a regular expression only for versioned references. String splitting and regexes were most
    of a view's time (docs/performance.md)."""
    pattern = r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/_history/[^/]+$"
    parts = f"string_split({ref}, '/')"
    kind, key = f"{parts}[-2]", f"{parts}[-1]"
    versioned_kind = f"regexp_extract({ref}, {sql_string(pattern)}, 1)"
    versioned_key = f"regexp_extract({ref}, {sql_string(pattern)}, 2)"
    kind_ok = f"{kind} = {sql_string(wanted)}" if wanted else f"regexp_full_match({kind}, '[A-Z][A-Za-z]+')"
    versioned_ok = f"{versioned_kind} = {sql_string(wanted)}" if wanted else f"{versioned_kind} <> ''"
    general = (
        f"(CASE WHEN {ref} IS NULL OR contains({ref}, '?') OR starts_with({ref}, '#') THEN NULL "
        f"WHEN contains({ref}, '/_history/') "
        f"THEN (CASE WHEN {versioned_ok} THEN nullif({versioned_key}, '') END) "
        f"WHEN {kind_ok} THEN nullif({key}, '') END)"
    )
    if not wanted:
        return general
    # A LIKE wildcard in a type name could only send more references down the general path, never fewer.
    prefix = f"{wanted}/"
    return (
        f"(CASE WHEN starts_with({ref}, {sql_string(prefix)}) THEN (CASE WHEN contains({ref}, '?') OR "
        f"{ref} LIKE {sql_string(prefix + '%/%')} OR {ref} = {sql_string(prefix)} THEN {general} "
        f"ELSE substring({ref}, {len(prefix) + 1}) END) ELSE {general} END)"
    )


def _call(node: fp.Call, focus: Expr, scope: Scope) -> Expr:
    name = node.name
    if name == "getResourceKey":
        _args(node, 0, 0)
        base = focus if node.base is None else compile_node(node.base, focus, scope)
        if base.kind != "root":
            raise ViewCompileError("getResourceKey() applies to the resource the view is about")
        scope.root_fields["id"] = "VARCHAR"
        return _guard(base, Expr("val", "id", sql='r."id"', sqltype="VARCHAR"))
    e = focus if node.base is None else compile_node(node.base, focus, scope)
    if name == "where":
        _args(node, 1, 1)
        return _lambda(e, node.args[0], scope, _keep)
    if name == "exists":
        _args(node, 0, 1)
        if node.args:
            e = _lambda(e, node.args[0], scope, _keep)
        return Expr("val", "boolean", sql=_exists(e), sqltype="BOOLEAN")
    if name == "empty":
        _args(node, 0, 0)
        return Expr("val", "boolean", sql=f"(NOT {_exists(e)})", sqltype="BOOLEAN")
    if name == "all":
        _args(node, 1, 1)
        f = _lambda(
            e, node.args[0], scope, lambda lst, x, c: f"list_filter({lst}, {x} -> NOT coalesce({c}, FALSE))"
        )
        return Expr("val", "boolean", sql=f"({_count(f)} = 0)", sqltype="BOOLEAN")
    if name == "first":
        _args(node, 0, 0)
        if e.kind in STRUCT_KINDS:
            return struct_first(e)
        return first_json(e) if e.kind != "root" else e
    if name == "last":
        _args(node, 0, 0)
        if e.kind == "slist":
            return replace(e, kind="sval", sql=f"({e.sql})[-1]")
        return (
            e
            if e.kind in ("json", "val", "root", "sval")
            else Expr("json", e.type, sql=f"({as_list(e)})[-1]")
        )
    if name == "count":
        _args(node, 0, 0)
        return Expr("val", "integer", sql=_count(e), sqltype="BIGINT")
    if name == "not":
        _args(node, 0, 0)
        return Expr("val", "boolean", sql=f"(NOT {as_bool(e, 'the input of not()')})", sqltype="BOOLEAN")
    if name == "ofType":
        _args(node, 1, 1)
        return of_type(e, _type_arg(node.args[0], "ofType"), scope)
    if name == "extension":
        _args(node, 1, 1)
        url = compile_node(node.args[0], focus, scope)
        if url.kind != "val":
            raise ViewCompileError("extension() takes a URL string")
        exts = (
            navigate(e, "extension", scope)
            if e.type is not None or e.kind == "root"
            else _dynamic_member(e, "extension", scope)
        )
        x = _fresh_var(scope)
        if exts.kind in STRUCT_KINDS:
            url_of = as_value(navigate(replace(exts, kind="sval", sql=x), "url", scope), "VARCHAR")
            lst = struct_list(exts, scope)
            return replace(exts, kind="slist", sql=f"list_filter({lst}, {x} -> {url_of.sql} = {url.sql})")
        return Expr(
            "list",
            "Extension",
            sql=f"list_filter({as_list(exts)}, {x} -> json_extract_string({x}, '$.url') = {url.sql})",
        )
    if name == "getReferenceKey":
        _args(node, 0, 1)
        wanted = _type_arg(node.args[0], "getReferenceKey") if node.args else None
        if e.type not in (None, "Reference"):
            raise ViewCompileError(f"getReferenceKey() applies to a Reference, not {e.type}")
        one = (
            struct_first(e)
            if e.kind in STRUCT_KINDS
            else Expr("json", "Reference", sql=sql_of(first_json(e)))
        )
        ref = as_value(navigate(one, "reference", scope), "VARCHAR")
        return Expr("val", "string", sql=_reference_key(ref.sql, wanted), sqltype="VARCHAR")
    if name == "join":
        _args(node, 0, 1)
        sep = as_value(compile_node(node.args[0], focus, scope), "VARCHAR").sql if node.args else "''"
        x = _fresh_var(scope)
        if e.kind in STRUCT_KINDS and e.type in PRIMITIVE_TYPES:
            texts = f"list_transform({struct_list(e, scope)}, {x} -> CAST({x} AS VARCHAR))"
            return Expr(
                "val", "string", sql=f"array_to_string(coalesce({texts}, []), {sep})", sqltype="VARCHAR"
            )
        return Expr(
            "val",
            "string",
            sql=f"array_to_string(list_transform({as_list(e)}, {x} -> json_extract_string({x}, '$')), {sep})",
            sqltype="VARCHAR",
        )
    if name == "iif":
        _args(node, 2, 3)
        cond = as_bool(compile_node(node.args[0], focus, scope), "the condition of iif()")
        a = compile_node(node.args[1], focus, scope)
        b = compile_node(node.args[2], focus, scope) if len(node.args) == 3 else None
        want = as_value(a).sqltype
        av = as_value(a, want).sql
        bv = as_value(b, want).sql if b is not None else "NULL"
        return Expr("val", a.type, sql=f"(CASE WHEN {cond} THEN {av} ELSE {bv} END)", sqltype=want)
    if name in _STRING_FUNCTIONS:
        low, high, template = _STRING_FUNCTIONS[name]
        _args(node, low, high)
        s = as_value(e, "VARCHAR").sql
        args = [as_value(compile_node(a, focus, scope)).sql for a in node.args]
        out_type, sqltype, sql = template(s, args)
        return Expr("val", out_type, sql=sql, sqltype=sqltype)
    if name in ("toString", "toInteger", "toDecimal", "toBoolean"):
        _args(node, 0, 0)
        target = {
            "toString": "string",
            "toInteger": "integer",
            "toDecimal": "decimal",
            "toBoolean": "boolean",
        }[name]
        v = as_value(e)
        st = sql_type_of(target)
        return Expr("val", target, sql=f"TRY_CAST({v.sql} AS {st})", sqltype=st)
    if name in ("lowBoundary", "highBoundary"):
        _args(node, 0, 1)
        return boundary(e, high=name == "highBoundary")
    raise ViewCompileError(f"unknown FHIRPath function '{name}()'")


def _fill_time(core: str, high: bool) -> str:
    """Complete hh, hh:mm, hh:mm:ss or hh:mm:ss.f to millisecond precision at the low or high end."""
    template = sql_string("23:59:59.999" if high else "00:00:00.000")
    digit = "'9'" if high else "'0'"
    return (
        f"(CASE WHEN length({core}) <= 8 THEN {core} || substring({template}, length({core}) + 1) "
        f"WHEN length({core}) < 12 THEN {core} || repeat({digit}, 12 - length({core})) ELSE {core} END)"
    )


def boundary(e: Expr, high: bool) -> Expr:
    """FHIRPath lowBoundary()/highBoundary(): the least or greatest value a decimal, date, dateTime or time
    recorded at its precision could stand for (1.0 -> 0.95/1.05; 1970-06 -> 1970-06-01/1970-06-30)."""
    if e.type == "decimal" or e.type in INTEGER_TYPES:
        text = f"CAST({sql_of(first_json(e))} AS VARCHAR)"
        decimals = f"length(split_part({text}, '.', 2))"
        sign = "+" if high else "-"
        sql = f"(CAST({text} AS DOUBLE) {sign} 0.5 * pow(10, -{decimals}))"
        return Expr("val", "decimal", sql=sql, sqltype="DOUBLE")
    if e.type not in ("date", "dateTime", "instant", "time"):
        raise ViewCompileError(
            f"{'highBoundary' if high else 'lowBoundary'}() applies to decimals, dates and "
            f"times, not {e.type or 'a value of unknown type'}"
        )
    s = as_value(e, "VARCHAR").sql
    if e.type == "time":
        return Expr("val", "time", sql=_fill_time(s, high), sqltype="VARCHAR")
    day = f"split_part({s}, 'T', 1)"
    last = f"strftime(last_day(CAST({day} || '-01' AS DATE)), '%Y-%m-%d')"
    month = last if high else f"{day} || '-01'"
    date_sql = (
        f"(CASE length({day}) WHEN 4 THEN {day} || {sql_string('-12-31' if high else '-01-01')} "
        f"WHEN 7 THEN {month} ELSE {day} END)"
    )
    if e.type == "date":
        return Expr("val", "date", sql=f"CASE WHEN {s} IS NOT NULL THEN {date_sql} END", sqltype="VARCHAR")
    clock = f"split_part({s}, 'T', 2)"
    zone = f"regexp_extract({clock}, '(Z|[+-][0-9]{{2}}:[0-9]{{2}})$')"
    core = f"regexp_replace({clock}, '(Z|[+-][0-9]{{2}}:[0-9]{{2}})$', '')"
    default_zone = sql_string("-12:00" if high else "+14:00")
    sql = (
        f"CASE WHEN {s} IS NOT NULL THEN {date_sql} || 'T' || {_fill_time(core, high)} || "
        f"(CASE WHEN {zone} = '' THEN {default_zone} ELSE {zone} END) END"
    )
    return Expr("val", e.type, sql=sql, sqltype="VARCHAR")


_STRING_FUNCTIONS: dict[str, tuple[int, int, Callable[[str, list[str]], tuple[str, str, str]]]] = {
    "startsWith": (1, 1, lambda s, a: ("boolean", "BOOLEAN", f"starts_with({s}, {a[0]})")),
    "endsWith": (1, 1, lambda s, a: ("boolean", "BOOLEAN", f"suffix({s}, {a[0]})")),
    "contains": (1, 1, lambda s, a: ("boolean", "BOOLEAN", f"contains({s}, {a[0]})")),
    "matches": (1, 1, lambda s, a: ("boolean", "BOOLEAN", f"regexp_full_match({s}, {a[0]})")),
    "length": (0, 0, lambda s, a: ("integer", "BIGINT", f"length({s})")),
    "lower": (0, 0, lambda s, a: ("string", "VARCHAR", f"lower({s})")),
    "upper": (0, 0, lambda s, a: ("string", "VARCHAR", f"upper({s})")),
    "substring": (
        1,
        2,
        lambda s, a: (
            "string",
            "VARCHAR",
            f"substring({s}, ({a[0]}) + 1" + (f", {a[1]})" if len(a) > 1 else ")"),
        ),
    ),
}


def _exists(e: Expr) -> str:
    if e.kind in STRUCT_KINDS:
        return f"({struct_len(e)} > 0)" if e.kind == "slist" else f"({e.sql} IS NOT NULL)"
    if e.kind == "root":
        return f"coalesce({e.sql}, FALSE)" if e.sql else "TRUE"
    if e.kind == "list":
        return f"(len({sql_of(e)}) > 0)"
    if e.kind == "choice":
        return f"({sql_of(choice_any(e))} IS NOT NULL)"
    return f"({sql_of(e)} IS NOT NULL)"


def compile_node(node: fp.Node, focus: Expr, scope: Scope) -> Expr:
    """Compile one FHIRPath syntax node evaluated on ``focus``."""
    if isinstance(node, fp.Literal):
        return _literal(node)
    if isinstance(node, fp.This):
        return focus
    if isinstance(node, fp.Constant):
        if node.name == "rowIndex":
            return Expr("val", "integer", sql=scope.row_index, sqltype="BIGINT")
        if node.name not in scope.constants:
            raise ViewCompileError(f"the constant %{node.name} is not defined in the view")
        return scope.constants[node.name]
    if isinstance(node, fp.Member):
        base = focus if node.base is None else compile_node(node.base, focus, scope)
        return navigate(base, node.name, scope)
    if isinstance(node, fp.Call):
        return _call(node, focus, scope)
    if isinstance(node, fp.Index):
        base = compile_node(node.base, focus, scope)
        index = as_value(compile_node(node.index, focus, scope), "BIGINT")
        if base.kind in STRUCT_KINDS:
            return replace(base, kind="sval", sql=f"({struct_list(base, scope)})[({index.sql}) + 1]")
        return Expr("json", base.type, sql=f"({as_list(base)})[({index.sql}) + 1]")
    if isinstance(node, fp.Unary):
        operand = as_value(compile_node(node.operand, focus, scope), "DOUBLE")
        if node.op == "-":
            return Expr("val", operand.type, sql=f"(-{operand.sql})", sqltype=operand.sqltype)
        return operand
    return _binary(node, focus, scope)


def compile_path(text: str, focus: Expr, scope: Scope) -> Expr:
    return compile_node(fp.parse(text), focus, scope)
