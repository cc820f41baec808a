"""CEL expressions: guards and alert conditions.

Evaluated with the `common-expression-language` package (Rust-backed CEL, a few microseconds
per evaluation); nothing here ever calls Python's `eval`. Compiled programs are cached by
source text, so a definition's expressions are compiled once per process.

The runtime has no cost budget and holds the GIL while it evaluates, so an expression's cost
is bounded before it runs: `cost_problems` (see `limits` for the measurements behind it) is
part of validation and is checked again before every evaluation, so a definition published
before a limit existed cannot stall the process either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

from workflows.definition.cel_syntax import (
    Call,
    Comprehension,
    Ident,
    Index,
    Literal,
    Node,
    Operation,
    Select,
    SyntaxProblem,
    TooDeep,
    parse,
)
from workflows.definition.limits import (
    MAX_CONDITION_LENGTH,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_EXPRESSION_NAMES,
)
from workflows.definition.translation import Message, gettext_noop
from workflows.definition.translation import gettext as _

# Functions and macros of the CEL standard definitions that the evaluator supports.
STANDARD_FUNCTIONS = frozenset(
    {
        "size", "int", "uint", "double", "string", "bytes", "bool", "type", "dyn",
        "duration", "timestamp", "matches", "contains", "startsWith", "endsWith",
        "has", "all", "exists", "exists_one", "map", "filter", "max", "min",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
        "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ExpressionScope:
    """What an expression may refer to."""

    variables: frozenset[str]
    functions: frozenset[str] = frozenset()


GUARD_SCOPE = ExpressionScope(variables=frozenset({"payload", "context"}))
# Measurement functions: the first argument is a measurement code, read from the patient's
# series in the code's canonical unit.
SERIES_FUNCTIONS = frozenset({"last", "delta", "rise", "fall"})
# The measurements a NEWS2 score reads (patients.news2.NEWS2_CODES; the language cannot import
# patients): respiratory rate, SpO2, inhaled oxygen flow (0: air), systolic pressure, pulse,
# level of responsiveness (ACVPU), temperature.
NEWS2_CODES = frozenset({"9279-1", "59408-5", "3151-8", "8480-6", "8867-4", "67775-7", "8310-5"})
ALERT_SCOPE = ExpressionScope(
    variables=frozenset({"observation", "params"}),
    functions=SERIES_FUNCTIONS | {"news2", "news2_partial"},
)


class ExpressionError(ValueError):
    pass


# The CEL parser recurses once per operator of a chain such as `1+1+...`: at about 60 KB it
# overflows its thread's stack and kills the process. Nothing that long reaches it. (The
# cost limit, MAX_EXPRESSION_LENGTH, is far lower; this one only has to be safe, and above
# anything a definition published before that limit may hold, whose alert plans still compile.)
_PARSER_SAFE_LENGTH = 10_000


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> cel.Program:
    if len(source) > _PARSER_SAFE_LENGTH:
        raise ExpressionError(_too_long(source))
    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionError(_parse_error(str(exc))) from exc


def check_expression(source: str, scope: ExpressionScope) -> list[str]:
    """Every reason `source` is not a valid expression for `scope`; empty when it is."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        return [_too_long(source)]
    try:
        compile_expression(source)
    except ExpressionError as exc:
        return [_("expression does not parse: %(reason)s") % {"reason": exc}]
    tree, problems = _analysis(source)
    if tree is None:
        return [str(m) for m in problems]
    out = []
    for name in sorted(_free_names(tree)):
        if name not in scope.variables:
            allowed = ", ".join(sorted(scope.variables))
            message = _("unknown variable %(name)s (available here: %(allowed)s)")
            out.append(message % {"name": repr(name), "allowed": allowed})
    for name in sorted(_called(tree)):
        if name in STANDARD_FUNCTIONS or name in scope.functions:
            continue
        message = (
            _("unknown function %(name)s; available here: %(allowed)s")
            if scope.functions
            else _("unknown function %(name)s")
        )
        out.append(message % {"name": repr(name), "allowed": ", ".join(sorted(scope.functions))})
    return out + [str(m) for m in problems]


def expression_tree(source: str) -> Node | None:
    """The syntax tree of `source` as the CEL library reads it; None when the library does not
    compile it or the tree cannot be had (too deep, or read differently from the library)."""
    try:
        compile_expression(source)
    except ExpressionError:
        return None
    return _analysis(source)[0]


@lru_cache(maxsize=4096)
def measurement_codes(source: str) -> frozenset[str]:
    """The measurement codes an alert condition reads: compared with `observation.code`, or
    the first argument of a series function (`last('29463-7')`). Empty when it cannot be
    analysed (validation reports why)."""
    try:
        compile_expression(source)
    except ExpressionError:
        return frozenset()
    tree, _ = _analysis(source)
    if tree is None:
        return frozenset()
    codes: set[str] = set()
    for node in tree.walk():
        if isinstance(node, Call) and node.name in SERIES_FUNCTIONS and node.args:
            codes.update(_string(node.args[0]))
        elif isinstance(node, Call) and node.name in ("news2", "news2_partial"):
            codes.update(NEWS2_CODES)
        elif isinstance(node, Operation) and node.operator in ("==", "in"):
            left, *right = node.operands
            if _is_observation_code(left):
                for part in right:
                    codes.update(_string(part))
                    if isinstance(part, Operation) and part.operator == "[]":
                        for item in part.operands:
                            codes.update(_string(item))
    return frozenset(codes)


@lru_cache(maxsize=4096)
def parameter_names(source: str) -> frozenset[str]:
    """The names an expression reads from `params` (`params.spo2_floor`)."""
    try:
        compile_expression(source)
    except ExpressionError:
        return frozenset()
    tree, _ = _analysis(source)
    if tree is None:
        return frozenset()
    return frozenset(
        node.name
        for node in tree.walk()
        if isinstance(node, Select)
        and isinstance(node.operand, Ident)
        and node.operand.name == "params"
    )


def _is_observation_code(node: Node) -> bool:
    return (
        isinstance(node, Select)
        and node.name == "code"
        and isinstance(node.operand, Ident)
        and node.operand.name == "observation"
    )


def _string(node: Node) -> list[str]:
    if isinstance(node, Literal) and len(node.text) >= 2 and node.text[0] in "'\"":
        return [node.text[1:-1]]
    return []


def cost_problems(source: str) -> list[str]:
    """Every reason evaluating `source` could cost more than the limits allow (its length,
    depth, how often it names a variable, refused functions and macros, what comprehensions
    iterate and read); empty when none. Independent of where the expression is used."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        return [_too_long(source)]
    return [str(m) for m in _analysis(source)[1]]


@lru_cache(maxsize=4096)
def _analysis(source: str) -> tuple[Node | None, tuple[Message, ...]]:
    """The tree of a source the CEL library compiles, and its cost problems. The tree is
    None when it cannot be had (too deep, or read differently from the library)."""
    program = compile_expression(source)
    try:
        tree = parse(source, max_depth=MAX_EXPRESSION_DEPTH)
    except TooDeep:
        message = gettext_noop("expression is nested more than %(n)s levels deep")
        return None, (Message(message, {"n": MAX_EXPRESSION_DEPTH}),)
    except SyntaxProblem as exc:
        message = gettext_noop("expression could not be analysed: %(reason)s")
        return None, (Message(message, {"reason": str(exc)}),)
    references = program.references()
    seen_names = {n.name for n in tree.walk() if isinstance(n, Ident)}
    seen_calls = _called(tree)
    library_calls = {f for f in references["functions"] if not f.startswith(("_", "@", "!"))}
    if seen_names != set(references["variables"]) or seen_calls != library_calls:
        return None, (
            Message(gettext_noop("expression could not be analysed: write it more plainly")),
        )
    return tree, tuple(dict.fromkeys(_cost_rules(tree)))


def _too_long(source: str) -> str:
    return _("expression is %(n)s characters long; at most %(limit)s are allowed") % {
        "n": len(source),
        "limit": MAX_EXPRESSION_LENGTH,
    }


def _free_names(tree: Node, bound: frozenset[str] = frozenset()) -> set[str]:
    """The variables `tree` names that no comprehension inside it binds."""
    names = set()
    stack = [(tree, bound)]
    while stack:
        node, names_bound = stack.pop()
        if isinstance(node, Ident):
            if node.name not in names_bound:
                names.add(node.name)
        elif isinstance(node, Comprehension):
            stack.append((node.range, names_bound))
            stack.extend((part, names_bound | {node.variable}) for part in node.body)
        else:
            stack.extend((child, names_bound) for child in node.children())
    return names


def _called(tree: Node) -> set[str]:
    return {n.name for n in tree.walk() if isinstance(n, Call)}


_NOT_LINEAR = {
    "map": gettext_noop(
        "map() is not available: it copies the list it builds at every item, so its "
        "time grows with the square of the list; use all(), exists() or exists_one()"
    ),
    "filter": gettext_noop(
        "filter() is not available: it copies the list it builds at every item, so "
        "its time grows with the square of the list; use all(), exists() or exists_one()"
    ),
}


def _cost_rules(tree: Node) -> Iterator[Message]:
    names = sum(1 for n in tree.walk() if isinstance(n, Ident))
    if names > MAX_EXPRESSION_NAMES:
        yield Message(
            gettext_noop(
                "expression names its variables %(n)s times; at most %(limit)s "
                "are allowed (each time copies the value named)"
            ),
            {"n": names, "limit": MAX_EXPRESSION_NAMES},
        )
    if any(isinstance(n, Call) and n.name == "matches" for n in tree.walk()):
        yield Message(
            gettext_noop(
                "matches() is not available: the time a regular expression takes cannot be "
                "bounded; use startsWith(), endsWith(), contains() or 'in'"
            )
        )
    comprehensions = [n for n in tree.walk() if isinstance(n, Comprehension)]
    inside = sum(c.body_length for c in comprehensions)
    if inside > MAX_CONDITION_LENGTH:
        yield Message(
            gettext_noop(
                "the conditions inside %(macros)s are %(n)s characters long in "
                "all; at most %(limit)s are allowed (they run once per item)"
            ),
            {"macros": _macros(comprehensions), "n": inside, "limit": MAX_CONDITION_LENGTH},
        )
    yield from _outermost_comprehension_rules(tree)


def _macros(comprehensions: list[Comprehension]) -> str:
    names = list(dict.fromkeys(f"{c.macro}()" for c in comprehensions))
    return names[0] if len(names) == 1 else ", ".join(names)


def _outermost_comprehension_rules(tree: Node) -> Iterator[Message]:
    # A comprehension inside another is refused as such; its own parts are not examined.
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Comprehension):
            yield from _comprehension_rules(node)
        else:
            stack.extend(reversed(node.children()))


def _comprehension_rules(node: Comprehension) -> Iterator[Message]:
    macro = "exists_one" if node.macro == "existsOne" else node.macro
    if macro in _NOT_LINEAR:
        yield Message(_NOT_LINEAR[macro])
    if not _is_field(node.range) and not (
        isinstance(node.range, Operation) and node.range.operator == "[]"
    ):
        yield Message(
            gettext_noop(
                "%(macro)s() must run over a field, such as payload.items, or a list written out"
            ),
            {"macro": macro},
        )
    for part in (node.range, *node.body):
        for inner in part.walk():
            if isinstance(inner, Comprehension):
                yield Message(
                    gettext_noop(
                        "%(inner)s() inside %(macro)s(): comprehensions cannot be nested "
                        "(the inner one would run once per item of the outer one)"
                    ),
                    {"inner": inner.macro, "macro": macro},
                )
    for part in node.body:
        for name in sorted(_free_names(part, frozenset({node.variable}))):
            yield Message(
                gettext_noop(
                    "inside %(macro)s(), only %(variable)s and constants may be used: "
                    "%(name)s would be copied once per item"
                ),
                {"macro": macro, "variable": repr(node.variable), "name": repr(name)},
            )
        for inner in part.walk():
            if isinstance(inner, Call) and inner.name not in STANDARD_FUNCTIONS:
                yield Message(
                    gettext_noop(
                        "inside %(macro)s(), %(function)s() cannot be called: "
                        "it would run once per item"
                    ),
                    {"macro": macro, "function": inner.name},
                )


def _is_field(node: Node) -> bool:
    while isinstance(node, (Select, Index)):
        node = node.operand
    return isinstance(node, Ident)


def evaluate(
    source: str,
    variables: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """Evaluate `source`; raises ExpressionError on any evaluation failure, and without
    evaluating it when it breaks a cost limit (`cost_problems`)."""
    program = compile_expression(source)
    problems = cost_problems(source)
    if problems:
        raise ExpressionError(f"not evaluated, too costly: {problems[0]}")
    context: dict[str, Any] | cel.Context
    if functions:
        context = cel.Context(variables=dict(variables), functions=dict(functions))
    else:
        context = dict(variables)
    try:
        return program.execute(context)
    except Exception as exc:  # the CEL runtime raises several types; all mean "cannot evaluate"
        raise ExpressionError(_first_line(str(exc))) from exc


_CEL_SYNTAX = re.compile(r"<input>:(\d+):(\d+): (.*)")


# The CEL parser's commonest complaints, said in words a reader may have translated; any
# other is quoted as the parser gives it.
_CEL_MISMATCH = re.compile(r"^Syntax error: (?:mismatched|extraneous) input '(.*)'$")
_CEL_CHARACTER = re.compile(r"^Syntax error: token recognition error at: '(.*)'$")


def _syntax_message(message: str) -> str:
    mismatch = _CEL_MISMATCH.match(message)
    if mismatch is not None and mismatch.group(1) == "<EOF>":
        return _("the expression stops before it is complete")
    if mismatch is not None:
        return _("%(token)s is not expected here") % {"token": repr(mismatch.group(1))}
    character = _CEL_CHARACTER.match(message)
    if character is not None:
        return _("unknown character %(token)s") % {"token": repr(character.group(1))}
    return _("syntax error (%(detail)s)") % {"detail": message.removeprefix("Syntax error: ")}


def _parse_error(text: str) -> str:
    match = _CEL_SYNTAX.search(text)
    if not match:
        return _first_line(text)
    line, column, message = match.groups()
    message = _syntax_message(re.sub(r" expecting .*$", "", message))
    where = (_("column %(column)s") if line == "1" else _("line %(line)s, column %(column)s")) % {
        "line": line,
        "column": column,
    }
    return f"{where}: {message}"


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else text
