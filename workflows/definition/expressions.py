"""CEL expressions: guards and alert conditions.

Evaluated with the `common-expression-language` package (Rust-backed CEL, a few microseconds
per evaluation); nothing here ever calls Python's `eval`. Compiled programs are cached by
source text, so a definition's expressions are compiled once per process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

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

_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


@dataclass(frozen=True)
class ExpressionScope:
    """What an expression may refer to."""

    variables: frozenset[str]
    functions: frozenset[str] = frozenset()


GUARD_SCOPE = ExpressionScope(variables=frozenset({"payload", "context"}))
ALERT_SCOPE = ExpressionScope(
    variables=frozenset({"observation"}), functions=frozenset({"last", "delta"})
)


class ExpressionError(ValueError):
    pass


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> cel.Program:
    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionError(_parse_error(str(exc))) from exc


def check_expression(source: str, scope: ExpressionScope) -> list[str]:
    """Every reason `source` is not a valid expression for `scope`; empty when it is."""
    try:
        program = compile_expression(source)
    except ExpressionError as exc:
        return [f"expression does not parse: {exc}"]
    problems = []
    bound = set(_MACRO_BINDING.findall(source))
    for name in program.variables():
        if name not in scope.variables and name not in bound:
            allowed = ", ".join(sorted(scope.variables))
            problems.append(f"unknown variable {name!r} (available here: {allowed})")
    for name in program.functions():
        if name.startswith(("_", "@", "!")) or name in STANDARD_FUNCTIONS:
            continue
        if name not in scope.functions:
            extra = (
                f"; available here: {', '.join(sorted(scope.functions))}" if scope.functions else ""
            )
            problems.append(f"unknown function {name!r}{extra}")
    return problems


def evaluate(
    source: str,
    variables: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """Evaluate `source`; raises ExpressionError on any evaluation failure."""
    program = compile_expression(source)
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


def _parse_error(text: str) -> str:
    match = _CEL_SYNTAX.search(text)
    if not match:
        return _first_line(text)
    line, column, message = match.groups()
    message = re.sub(r" expecting \{.*\}", "", message)
    where = f"column {column}" if line == "1" else f"line {line}, column {column}"
    return f"{where}: {message}"


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else text
