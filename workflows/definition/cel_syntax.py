"""The syntax tree of a CEL expression, for the checks that bound what an expression costs.

The `cel` package compiles and evaluates expressions but exposes no syntax tree: only the
names an expression references. Bounding an expression's cost needs more (which calls sit
inside a comprehension, what a comprehension iterates), so this module parses the same
grammar (CEL.g4, as the package's Rust parser uses it) into a small tree. It never decides
whether an expression is valid CEL: `cel.compile` does; an expression this parser reads
differently from the library is caught by comparing the names both see
(`expressions.check_expression`), and refused.

Comprehension macros are recognised as the library recognises them: a member call named
all, exists, exists_one (or existsOne), filter with two arguments, or map with two or three,
whose first argument is a plain name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})


class SyntaxProblem(ValueError):
    pass


class TooDeep(SyntaxProblem):
    pass


@dataclass(frozen=True)
class Node:
    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterator[Node]:
        """This node and every node under it, depth first. Iterative: a chain such as
        `!!!!...x` or `1+1+...` is as deep as it is long."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))


@dataclass(frozen=True)
class Literal(Node):
    text: str


@dataclass(frozen=True)
class Ident(Node):
    name: str  # with its leading dot, if written `.name`


@dataclass(frozen=True)
class Select(Node):
    operand: Node
    name: str

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    index: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.index)


@dataclass(frozen=True)
class Call(Node):
    name: str
    target: Node | None
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return ((self.target,) if self.target is not None else ()) + self.args


@dataclass(frozen=True)
class Comprehension(Node):
    macro: str
    range: Node
    variable: str
    body: tuple[Node, ...]
    body_length: int  # characters of source, from the first argument after the variable

    def children(self) -> tuple[Node, ...]:
        return (self.range, *self.body)


@dataclass(frozen=True)
class Operation(Node):
    """Unary and binary operators, `?:`, list, map and message literals, `has()`."""

    operator: str
    operands: tuple[Node, ...] = field(default=())

    def children(self) -> tuple[Node, ...]:
        return self.operands


# --- tokens ---------------------------------------------------------------------------------

_ESCAPE = r"\\(?:[abfnrtv\\?\"'`]|[xX][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2})"
_STRING_BODY = (
    rf'"""(?:{_ESCAPE}|[^\\])*?"""'
    rf"|'''(?:{_ESCAPE}|[^\\])*?'''"
    rf'|"(?:{_ESCAPE}|[^\\"\n\r])*"'
    rf"|'(?:{_ESCAPE}|[^\\'\n\r])*'"
)
_RAW_BODY = r'"""[\s\S]*?"""' r"|'''[\s\S]*?'''" r'|"[^"\n\r]*"' r"|'[^'\n\r]*'"
_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n\f]+|//[^\n]*)"
    rf"|(?P<string>[bB]?(?:[rR](?:{_RAW_BODY})|(?:{_STRING_BODY})))"
    r"|(?P<number>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)"
    r"|0x[0-9a-fA-F]+[uU]?|\d+[uU]?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!\-+*/%?:.,()\[\]{}])"
)
_LITERAL_NAMES = frozenset({"true", "false", "null"})


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, name, op, end
    text: str
    start: int  # offset in the source

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _tokens(source: str) -> list[_Token]:
    out = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise SyntaxProblem(f"unexpected character at column {position + 1}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            out.append(_Token(kind, match.group(), position))
        position = match.end()
    out.append(_Token("end", "", len(source)))
    return out


# --- grammar --------------------------------------------------------------------------------

_RELATIONS = frozenset({"<", "<=", ">=", ">", "==", "!=", "in"})


class _Parser:
    def __init__(self, source: str, max_depth: int) -> None:
        self.tokens = _tokens(source)
        self.at = 0
        self.depth = 0
        self.max_depth = max_depth

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.at + offset, len(self.tokens) - 1)]

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if text is not None and (token.kind not in ("op", "name") or token.text != text):
            raise SyntaxProblem(f"expected {text!r}, found {token.text or 'the end'!r}")
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind in ("op", "name") and token.text == text:
            self.at += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise SyntaxProblem(f"unexpected {self.peek().text!r}")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > self.max_depth:
            raise TooDeep(f"nested more than {self.max_depth} levels deep")
        node = self.binary(0)
        if self.accept("?"):
            then = self.binary(0)
            self.take(":")
            node = Operation("?:", (node, then, self.expr()))
        self.depth -= 1
        return node

    # Precedence levels, loosest first; each loops, so a long chain of one operator does not
    # recurse (relation is left-recursive in CEL.g4, the same tree).
    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        _RELATIONS,
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek().kind in ("op", "name") and self.peek().text in self._LEVELS[level]:
            operator = self.take().text
            node = Operation(operator, (node, self.binary(level + 1)))
        return node

    def unary(self) -> Node:
        operators = []
        while self.peek().kind == "op" and self.peek().text in ("!", "-"):
            operators.append(self.take().text)
        node = self.member()
        for operator in reversed(operators):
            node = Operation(f"{operator}_", (node,))
        return node

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.take()
                if name.kind != "name" or name.text in _LITERAL_NAMES or name.text == "in":
                    raise SyntaxProblem(f"expected a field name after '.', found {name.text!r}")
                if self.accept("("):
                    first = self.at
                    args = self.arguments(")")
                    node = self.call(name.text, node, args, self.tokens[first : self.at - 1])
                else:
                    node = Select(node, name.text)
            elif self.accept("["):
                node = Index(node, self.expr())
                self.take("]")
            else:
                return node

    def call(
        self,
        name: str,
        target: Node | None,
        args: tuple[Node, ...],
        inside: Sequence[_Token] = (),
    ) -> Node:
        arity = (2, 3) if name == "map" else (2,)
        if target is not None and name in MACROS and len(args) in arity:
            variable = args[0]
            if not isinstance(variable, Ident) or variable.name.startswith("."):
                raise SyntaxProblem(f"{name}() needs a plain name as its first argument")
            # inside: the variable, a comma, then the body's tokens
            body_length = inside[-1].end - inside[2].start if len(inside) > 2 else 0
            return Comprehension(name, target, variable.name, args[1:], body_length)
        if target is None and name == "has" and len(args) == 1:
            return Operation("has", args)
        return Call(name, target, args)

    def arguments(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if self.accept(close):
            return ()
        while True:
            items.append(self.expr())
            if self.accept(close):
                return tuple(items)
            self.take(",")
            if close != ")" and self.accept(close):  # list literals allow a trailing comma
                return tuple(items)

    def primary(self) -> Node:
        token = self.peek()
        if token.kind in ("string", "number"):
            self.at += 1
            return Literal(token.text)
        if token.kind == "op" and token.text == "-" and self.peek(1).kind == "number":
            self.at += 2
            return Literal("-" + self.tokens[self.at - 1].text)
        if self.accept("("):
            node = self.expr()
            self.take(")")
            return node
        if self.accept("["):
            return Operation("[]", self.arguments("]"))
        if self.accept("{"):
            return Operation("{}", self.entries())
        leading = "." if self.accept(".") else ""
        name = self.take()
        if name.kind != "name" or name.text == "in":
            raise SyntaxProblem(f"unexpected {name.text or 'end'!r}")
        if name.text in _LITERAL_NAMES and not leading:
            return Literal(name.text)
        if self.accept("("):
            return self.call(leading + name.text, None, self.arguments(")"))
        qualified = leading + name.text
        # A message literal `a.b.C{field: value}`: names, then braces.
        ahead = 0
        while self.peek(ahead).text == "." and self.peek(ahead + 1).kind == "name":
            ahead += 2
        if self.peek(ahead).text == "{" and self.peek(ahead).kind == "op":
            for _ in range(ahead // 2):
                self.take(".")
                qualified += "." + self.take().text
            self.take("{")
            return Operation("message " + qualified, self.entries(fields=True))
        return Ident(qualified)

    def entries(self, *, fields: bool = False) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.accept("}"):
            if items:
                self.take(",")
                if self.accept("}"):
                    break
            if fields:
                name = self.take()
                if name.kind != "name":
                    raise SyntaxProblem(f"expected a field name, found {name.text!r}")
            else:
                items.append(self.expr())
            self.take(":")
            items.append(self.expr())
        return tuple(items)


def parse(source: str, *, max_depth: int) -> Node:
    """The tree of `source`. Raises TooDeep past `max_depth` nested expressions (brackets,
    calls, `?:`), SyntaxProblem for anything else this parser cannot read."""
    return _Parser(source, max_depth).parse()
