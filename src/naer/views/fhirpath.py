"""Parse the FHIRPath subset that SQL on FHIR v2 names into a small syntax tree.

The compiler (``views/compile.py``) turns the tree into DuckDB SQL; nothing here knows about SQL. The grammar
follows the FHIRPath N1 specification (operator precedence table in section 6), restricted to what
ViewDefinitions use: paths, indexers, function calls, literals, ``%constants``, ``$this``, and the boolean,
comparison, arithmetic, string-concatenation and union operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from naer.errors import UserError


class FhirPathSyntaxError(UserError):
    """A FHIRPath expression that cannot be parsed."""


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool | None  # None is the empty collection {}
    type: str  # FHIR type: string, integer, decimal, boolean, date, dateTime, time, empty


@dataclass(frozen=True)
class Constant:
    name: str  # %name (without the percent sign)


@dataclass(frozen=True)
class This:
    pass


@dataclass(frozen=True)
class Member:
    """``base.name`` or, with ``base`` None, a bare ``name`` on the current focus."""

    base: Node | None
    name: str


@dataclass(frozen=True)
class Call:
    """``base.fn(args)`` or, with ``base`` None, ``fn(args)`` on the current focus."""

    base: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


Node = Literal | Constant | This | Member | Call | Index | Binary | Unary

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@\d{4}(?:-\d{2}(?:-\d{2})?)?
      T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>@\d{4}(?:-\d{2}(?:-\d{2})?)?)
  | (?P<time>@T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<delimited>`(?:[^`\\]|\\.)*`)
  | (?P<special>\$this|\$index|\$total)
  | (?P<constant>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~(),.\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

# Binary operators by precedence, loosest first (FHIRPath section 6).
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("in", "contains"),
    ("=", "~", "!=", "!~"),
    ("<", ">", "<=", ">="),
    ("|",),
    ("+", "-", "&"),
    ("*", "/", "div", "mod"),
)
_WORD_OPS = {"implies", "or", "xor", "and", "in", "contains", "div", "mod"}
_ESCAPES = {"'": "'", '"': '"', "`": "`", "r": "\r", "n": "\n", "t": "\t", "f": "\f", "\\": "\\", "/": "/"}


def _unescape(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ch = m.group(1)
        if ch.startswith("u"):
            return chr(int(ch[1:], 16))
        return _ESCAPES.get(ch, ch)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, body)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r} at position {pos + 1} in {text!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, message: str) -> FhirPathSyntaxError:
        tok = self.peek()
        where = f"at position {tok[2] + 1}" if tok else "at the end"
        return FhirPathSyntaxError(f"{message} {where} in {self.text!r}")

    def accept(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[1] == value and tok[0] in ("op", "ident"):
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise self.fail(f"expected {value!r}")

    def parse(self) -> Node:
        if not self.toks:
            raise FhirPathSyntaxError("empty FHIRPath expression")
        node = self.binary(0)
        if self.peek() is not None:
            raise self.fail("unexpected token")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            tok = self.peek()
            if tok is None or tok[1] not in _LEVELS[level] or (tok[0] == "ident") != (tok[1] in _WORD_OPS):
                return left
            self.i += 1
            right = self.binary(level + 1)
            left = Binary(tok[1], left, right)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in "+-":
            self.i += 1
            return Unary(tok[1], self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.term()
        while True:
            if self.accept("."):
                node = self.invocation(node)
            elif self.accept("["):
                index = self.binary(0)
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def identifier(self) -> str:
        tok = self.peek()
        if tok is None or tok[0] not in ("ident", "delimited"):
            raise self.fail("expected a name")
        self.i += 1
        return _unescape(tok[1][1:-1]) if tok[0] == "delimited" else tok[1]

    def invocation(self, base: Node | None) -> Node:
        name = self.identifier()
        if not self.accept("("):
            return Member(base, name)
        args: list[Node] = []
        if not self.accept(")"):
            args.append(self.binary(0))
            while self.accept(","):
                args.append(self.binary(0))
            self.expect(")")
        return Call(base, name, tuple(args))

    def term(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.fail("expected an expression")
        kind, text, _ = tok
        if kind == "op" and text == "(":
            self.i += 1
            node = self.binary(0)
            self.expect(")")
            return node
        if kind == "op" and text == "{":
            self.i += 1
            self.expect("}")
            return Literal(None, "empty")
        if kind in ("ident", "delimited"):
            if kind == "ident" and text in ("true", "false"):
                self.i += 1
                return Literal(text == "true", "boolean")
            return self.invocation(None)
        self.i += 1
        if kind == "string":
            return Literal(_unescape(text[1:-1]), "string")
        if kind == "number":
            return Literal(float(text), "decimal") if "." in text else Literal(int(text), "integer")
        if kind == "date":
            return Literal(text[1:], "date")
        if kind == "datetime":
            return Literal(text[1:], "dateTime")
        if kind == "time":
            return Literal(text[2:], "time")
        if kind == "constant":
            body = text[1:]
            return Constant(_unescape(body[1:-1]) if body[0] in "`'" else body)
        if kind == "special":
            if text == "$this":
                return This()
            raise FhirPathSyntaxError(f"{text} is not supported in views (in {self.text!r})")
        self.i -= 1
        raise self.fail("unexpected token")


def parse(text: str) -> Node:
    """Parse one FHIRPath expression; raise FhirPathSyntaxError saying where it goes wrong."""
    if not isinstance(text, str):
        raise FhirPathSyntaxError(f"a FHIRPath expression must be a string, not {type(text).__name__}")
    return _Parser(text).parse()
