"""Compile a SQL on FHIR v2 ViewDefinition into one DuckDB query.

The select tree becomes nested LATERAL subqueries: a ``forEach`` unnests its collection inside a subquery that
holds everything below it (so ``forEachOrNull`` is a LEFT JOIN that yields one row of nulls), sibling selects
are cross joins (the row product the specification asks for), ``unionAll`` is a UNION ALL of correlated
subqueries, and ``repeat`` is a correlated recursive CTE ordered depth-first. The resources are read with
DuckDB's JSON reader asking only for the top-level elements the view uses, which is what makes the views run
close to the speed of a bare scan (docs/performance.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from naer.errors import UserError
from naer.views import expressions as ex
from naer.views.definition import Column, SelectNode, View
from naer.views.expressions import Expr, NoSuchElementError, Scope, ViewCompileError, sql_string
from naer.views.schema import INTEGER_TYPES, PRIMITIVE_TYPES


def output_type(fhir_type: str | None) -> str:
    """DuckDB type of an output column: the compiler's SQL type for the FHIR type (dates and times keep
    their ISO text, with the precision and zone they were recorded with; analyses cast them), VARCHAR when
    the type is unknown, JSON for complex types."""
    return "VARCHAR" if fhir_type is None else ex.sql_type_of(fhir_type)


@dataclass(frozen=True)
class OutColumn:
    name: str
    type: str  # DuckDB type
    collection: bool


@dataclass(frozen=True)
class Compiled:
    view: View
    columns: list[OutColumn]
    fields: dict[str, str]  # top-level keys to read -> DuckDB type
    select: str  # the query, with {source} where the resource table goes

    def sql(self, source: str) -> str:
        return self.select.replace("{source}", source)


def quote(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def _select_list(items: list[tuple[str, str]]) -> str:
    return ", ".join(f"{sql} AS {quote(name)}" for sql, name in items) or "1 AS _none"


def _constant(c: dict[str, Any], view: View) -> Expr:
    # parse_view has checked that there is exactly one value[x].
    key, value = next((k, v) for k, v in c.items() if k.startswith("value"))
    fhir_type = key[len("value") :]
    fhir_type = fhir_type[:1].lower() + fhir_type[1:]
    if fhir_type == "boolean":
        if not isinstance(value, bool):
            raise ViewCompileError(f"view {view.label}: constant {c['name']!r} is not a boolean")
        return Expr("val", "boolean", sql="TRUE" if value else "FALSE", sqltype="BOOLEAN")
    if fhir_type in INTEGER_TYPES:
        return Expr("val", fhir_type, sql=str(int(value)), sqltype="BIGINT")
    if fhir_type == "decimal":
        return Expr("val", "decimal", sql=f"{float(value)!r}::DOUBLE", sqltype="DOUBLE")
    if not isinstance(value, str):
        raise ViewCompileError(
            f"view {view.label}: constant {c['name']!r} of type {fhir_type} must be a string"
        )
    return Expr("val", fhir_type, sql=sql_string(value), sqltype="VARCHAR")


_EMPTY = Expr("list", None, sql="[]::JSON[]")


class _Compiler:
    def __init__(self, view: View, scope: Scope) -> None:
        self.view = view
        self.scope = scope

    def path(self, text: str, focus: Expr, where: str) -> Expr:
        """Compile a path; any error (syntax, unknown function, missing element) names the view and place."""
        try:
            return ex.compile_path(text, focus, self.scope)
        except UserError as error:
            kind = NoSuchElementError if isinstance(error, NoSuchElementError) else ViewCompileError
            raise kind(f"view {self.view.label}, {where}: {error}") from None

    def lenient(self, text: str, focus: Expr) -> Expr:
        """A repeat path: one that names no element of the focus's type is empty, not an error, since
        repeat paths are meant for the nested levels (``answer.item`` is not on QuestionnaireResponse)."""
        try:
            return self.path(text, focus, f"repeat {text!r}")
        except NoSuchElementError:
            return _EMPTY

    def column(self, col: Column, focus: Expr) -> tuple[str, OutColumn]:
        e = self.path(col.path, focus, f"column {col.name!r}")
        fhir_type = col.type or (e.type if e.kind != "root" else None)
        if e.kind == "root":
            raise ViewCompileError(
                f"view {self.view.label}, column {col.name!r}: a column cannot hold the resource"
            )
        sqltype = output_type(fhir_type)
        if e.kind in ex.STRUCT_KINDS:
            return self.struct_column(col, e, sqltype), OutColumn(
                col.name, f"{sqltype}[]" if col.collection else sqltype, col.collection
            )
        if col.collection:
            x = self.scope.fresh("x")
            if e.kind == "val":
                items = f"(CASE WHEN {e.sql} IS NULL THEN [] ELSE [{e.sql}::{sqltype}] END)"
            else:
                items = f"list_transform({ex.as_list(e)}, {x} -> {ex.json_to(x, sqltype)})"
            return items, OutColumn(col.name, f"{sqltype}[]", True)
        if e.kind == "list":
            return self.single(col, f"len({ex.sql_of(e)})", ex.as_value(e, sqltype).sql), OutColumn(
                col.name, sqltype, False
            )
        v = ex.as_value(e, sqltype)
        value = v.sql if v.sqltype == sqltype else f"TRY_CAST({v.sql} AS {sqltype})"
        return value, OutColumn(col.name, sqltype, False)

    def single(self, col: Column, count: str, first: str) -> str:
        """The one value of a non-collection column, or a run-time error naming it if there are more."""
        message = sql_string(
            f"view {self.view.label}, column {col.name!r}: the path {col.path!r} returned more than one "
            "value; set collection: true to keep them all"
        )
        return f"(CASE WHEN {count} > 1 THEN error({message}) ELSE {first} END)"

    def struct_column(self, col: Column, e: Expr, sqltype: str) -> str:
        """A column read from a typed STRUCT: a primitive or a list of them (anything else needs JSON)."""
        if sqltype == "JSON" or e.type not in PRIMITIVE_TYPES:
            ex.require_json(e)
        leaf = ex.leaf_type(e.type)
        if col.collection:
            x = self.scope.fresh("x")
            items = ex.struct_list(e, self.scope)
            if leaf != sqltype:
                items = f"list_transform({items}, {x} -> TRY_CAST({x} AS {sqltype}))"
            return f"coalesce({items}, [])"
        value = ex.as_value(e, sqltype).sql
        return self.single(col, ex.struct_len(e), value) if e.kind == "slist" else value

    def node(
        self, node: SelectNode, focus: Expr, row_index: str
    ) -> tuple[list[tuple[str, str]], list[OutColumn], list[str]]:
        """Compile a select node against ``focus``: (select items, their columns, FROM items to add)."""
        if node.for_each is not None or node.for_each_or_null is not None or node.repeat is not None:
            return self.iterate(node, focus)
        saved = self.scope.row_index
        self.scope.row_index = row_index
        items: list[tuple[str, str]] = []
        columns: list[OutColumn] = []
        joins: list[str] = []
        for col in node.columns:
            sql, out = self.column(col, focus)
            items.append((sql, col.name))
            columns.append(out)
        self.scope.row_index = saved
        for child in node.selects:
            i, c, j = self.node(child, focus, row_index)
            items += i
            columns += c
            joins += j
        if node.union_all:
            i, c, j = self.union(node.union_all, focus, row_index)
            items += i
            columns += c
            joins += j
        return items, columns, joins

    def relation(self, node: SelectNode, focus: Expr, row_index: str) -> tuple[str, list[OutColumn]]:
        """A correlated subquery producing the rows of ``node`` for ``focus``."""
        items, columns, joins = self.node(node, focus, row_index)
        return f"SELECT {_select_list(items)} FROM (SELECT 1) AS _one {' '.join(joins)}", columns

    def union(
        self, branches: list[SelectNode], focus: Expr, row_index: str
    ) -> tuple[list[tuple[str, str]], list[OutColumn], list[str]]:
        alias = self.scope.fresh("u")
        parts: list[str] = []
        first: list[OutColumn] | None = None
        for branch in branches:
            sql, columns = self.relation(branch, focus, row_index)
            if first is None:
                first = columns
            elif [c.name for c in columns] != [c.name for c in first]:
                raise ViewCompileError(
                    f"view {self.view.label}: the branches of unionAll must have the same columns in the "
                    f"same order, not {[c.name for c in first]} and {[c.name for c in columns]}"
                )
            parts.append(sql)
        assert first is not None
        # Columns line up by position; DuckDB's UNION ALL casts branches that type a column differently.
        joined = " UNION ALL ".join(f"({p})" for p in parts)
        items = [(f"{alias}.{quote(c.name)}", c.name) for c in first]
        return items, first, [f"CROSS JOIN LATERAL ({joined}) AS {alias}"]

    def iterate(
        self, node: SelectNode, focus: Expr
    ) -> tuple[list[tuple[str, str]], list[OutColumn], list[str]]:
        alias = self.scope.fresh("f")
        it = self.scope.fresh("n")
        inner_node = replace(node, for_each=None, for_each_or_null=None, repeat=None)
        if node.repeat is not None:
            source, item_type = self.repeat(node.repeat, focus, it)
        else:
            path = node.for_each if node.for_each is not None else node.for_each_or_null
            assert path is not None
            e = self.path(path, focus, f"forEach {path!r}")
            if e.kind == "root":  # forEach: "where(...)" on the resource: the resource itself, or nothing
                items, columns, joins = self.node(inner_node, Expr("root", e.type), "0")
                guard = e.sql or "TRUE"
                return self.wrap(node, items, columns, joins, f"(SELECT 0 AS i WHERE {guard}) AS {it}", alias)
            typed = e.kind in ex.STRUCT_KINDS
            lst = ex.struct_list(e, self.scope) if typed else ex.as_list(e)
            item_type = e.type
            if node.for_each_or_null is not None:  # an empty collection gives one item, NULL, at index 0
                empty = f"coalesce(len({lst}), 0) = 0" if typed else f"len({lst}) = 0"
                lst = f"(CASE WHEN {empty} THEN [NULL{'' if typed else '::JSON'}] ELSE {lst} END)"
            source = f"(SELECT unnest({lst}) AS n, generate_subscripts({lst}, 1) - 1 AS i) AS {it}"
            if typed:
                inner = replace(e, kind="sval", sql=f"{it}.n")
                items, columns, joins = self.node(inner_node, inner, f"{it}.i")
                return self.wrap(node, items, columns, joins, source, alias)
        inner_focus = Expr("json", item_type, base=f"{it}.n", path="$")
        items, columns, joins = self.node(inner_node, inner_focus, f"{it}.i")
        return self.wrap(node, items, columns, joins, source, alias)

    def wrap(
        self,
        node: SelectNode,
        items: list[tuple[str, str]],
        columns: list[OutColumn],
        joins: list[str],
        source: str,
        alias: str,
    ) -> tuple[list[tuple[str, str]], list[OutColumn], list[str]]:
        """The rows of an iterating select as a LATERAL subquery joined to its parent."""
        subquery = f"SELECT {_select_list(items)} FROM {source} {' '.join(joins)}"
        how = "LEFT JOIN LATERAL" if node.for_each_or_null is not None else "CROSS JOIN LATERAL"
        on = " ON TRUE" if node.for_each_or_null is not None else ""
        outer = [(f"{alias}.{quote(c.name)}", c.name) for c in columns]
        return outer, columns, [f"{how} ({subquery}) AS {alias}{on}"]

    def repeat(self, paths: list[str], focus: Expr, it: str) -> tuple[str, str | None]:
        """All nodes reachable by following ``paths`` again and again, in depth-first order, as a subquery."""
        cte = self.scope.fresh("rep")
        first = [self.lenient(p, focus) for p in paths]
        types = {e.type for e in first if e is not _EMPTY}
        item_type = types.pop() if len(types) == 1 else None
        node_focus = Expr("json", item_type, base=f"{cte}.n", path="$")
        again = [self.lenient(p, node_focus) for p in paths]

        def step(exprs: list[Expr]) -> str:
            parts = [
                f"SELECT unnest({ex.as_list(e)}) AS n, {k} AS p, generate_subscripts({ex.as_list(e)}, 1) AS i"
                for k, e in enumerate(exprs)
            ]
            return " UNION ALL ".join(parts)

        source = (
            f"(WITH RECURSIVE {cte}(n, k) AS (SELECT s.n, [s.p, s.i] FROM ({step(first)}) AS s "
            f"UNION ALL SELECT s.n, {cte}.k || [s.p, s.i] FROM {cte}, LATERAL ({step(again)}) AS s) "
            f"SELECT n, row_number() OVER (ORDER BY k) - 1 AS i FROM {cte}) AS {it}"
        )
        return source, item_type


def compile_view(view: View, structs: bool = False) -> Compiled:
    """Compile a validated view; raise ViewCompileError naming the view and column for what cannot be run.

    With ``structs``, top-level elements are read as typed STRUCTs wherever the view's use of them allows
    (only for files of one resource type: in a mixed file one key can have different types); an element
    used in a way only JSON supports is read as JSON, found by compiling again."""
    json_keys: frozenset[str] = frozenset()
    while True:
        try:
            return _compile(view, structs, json_keys)
        except ex.NeedsJson as need:
            if need.keys <= json_keys:  # pragma: no cover - would loop for ever
                raise AssertionError(f"view {view.label}: {need.keys} are already read as JSON") from None
            json_keys |= need.keys


def _compile(view: View, structs: bool, json_keys: frozenset[str]) -> Compiled:
    scope = Scope(view.resource, {"resourceType": "VARCHAR"}, {}, structs=structs, json_keys=json_keys)
    for c in view.constants:
        scope.constants[c["name"]] = _constant(c, view)
    compiler = _Compiler(view, scope)
    root = Expr("root", view.resource)
    items, columns, joins = compiler.node(view.root, root, "0")
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ViewCompileError(
            f"view {view.label}: column names must be unique; repeated: {', '.join(duplicates)}"
        )
    conditions = [f'r."resourceType" = {sql_string(view.resource)}']
    for w in view.where:
        e = compiler.path(w, root, f"where {w!r}")
        if e.kind != "root" and e.type is not None and e.type != "boolean":
            raise ViewCompileError(f"view {view.label}: the where path {w!r} returns {e.type}, not a boolean")
        conditions.append(f"coalesce({ex.as_bool(e, 'a where path')}, FALSE)")
    query = (
        f"SELECT {_select_list(items)} FROM {{source}} AS r {' '.join(joins)} "
        f"WHERE {' AND '.join(conditions)}"
    )
    fields = dict(scope.root_fields)
    for key, element in scope.struct_roots.items():
        fields[key] = ex.struct_type(element, [t for k, t in scope.trails if k == key and t])
    return Compiled(view, columns, fields, query)


def columns_struct(fields: dict[str, str]) -> str:
    """The ``columns={...}`` argument of read_ndjson for the top-level keys a view reads."""
    parts = ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in sorted(fields.items()))
    return "{" + parts + "}"


_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_sql_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name))
