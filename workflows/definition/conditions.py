"""What an alert condition tests of the observation it reads, taken from its syntax tree once,
when the definition is compiled.

- The measurement codes it is restricted to: a test `observation.code == 'X'` or
  `observation.code in ['X', 'Y']` that is one of the operands of the condition's top-level
  `&&`. CEL's `&&` is false as soon as one operand is (an error in another operand does not
  change that), so the condition is false for a reading of any other code and the engine need
  not evaluate it. A code test anywhere else (under `||`, `!`, `?:`, inside a call) restricts
  nothing.
- Its thresholds: the comparisons `observation.value < N` (`<`, `<=`, `>`, `>=`; N a number
  or `params.name`, on either side) reached from the top through `&&` and `||` only. A
  comparison under `!` or `?:`, inside a call such as `rise(...)` or inside a comprehension is
  not a line the reading crosses, and is left out. A threshold carries the unit when a test
  `observation.unit == 'U'` is an operand of an `&&` that encloses it.

Only plain string literals count as codes and units (no escapes, raw or triple-quoted
strings), so that what is read here is exactly the value CEL compares with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from workflows.definition.cel_syntax import Ident, Literal, Node, Operation, Select
from workflows.definition.expressions import expression_tree

# `observation.value <op> level` read as `level <mirror> observation.value`.
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_PLAIN_STRING = re.compile(r"'([^'\\\n\r]*)'|\"([^\"\\\n\r]*)\"")
_DECIMAL = re.compile(r"-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[uU]?")
_HEXADECIMAL = re.compile(r"-?0x[0-9a-fA-F]+[uU]?")


@dataclass(frozen=True)
class Threshold:
    """`observation.value <op> level`, the level a number or a parameter of the pathway."""

    op: str  # <, <=, > or >=, with observation.value on the left
    value: float | None = None  # the number written in the condition
    parameter: str | None = None  # or the parameter read (`params.<name>`)
    unit: str | None = None  # the unit the enclosing `&&` requires, if any


@dataclass(frozen=True)
class ObservationTests:
    only_codes: frozenset[str] | None  # None: not restricted to some codes
    thresholds: tuple[Threshold, ...]


NOT_ANALYSED = ObservationTests(only_codes=None, thresholds=())


@lru_cache(maxsize=4096)
def observation_tests(source: str) -> ObservationTests:
    """The codes `source` is restricted to and its thresholds, in the order written. Nothing
    (no restriction, no threshold) when it cannot be analysed: validation reports why."""
    tree = expression_tree(source)
    if tree is None:
        return NOT_ANALYSED
    return ObservationTests(only_codes=_only_codes(tree), thresholds=tuple(_thresholds(tree)))


def _only_codes(tree: Node) -> frozenset[str] | None:
    only: frozenset[str] | None = None
    for part in _operands(tree, "&&"):
        codes = _field_test(part, "code")
        if codes is not None:
            only = codes if only is None else only & codes
    return only


def _thresholds(tree: Node) -> list[Threshold]:
    found = []
    stack: list[tuple[Node, str | None]] = [(tree, None)]
    while stack:
        node, unit = stack.pop()
        if isinstance(node, Operation) and node.operator in ("&&", "||"):
            parts = _operands(node, node.operator)
            if node.operator == "&&":
                unit = next(filter(None, map(_unit_test, parts)), unit)
            stack.extend((part, unit) for part in reversed(parts))
        elif (threshold := _threshold(node, unit)) is not None:
            found.append(threshold)
    return found


def _operands(node: Node, operator: str) -> list[Node]:
    """The operands of a chain of `operator` (`a && b && c`), left to right; the node itself
    when it is something else. Iterative: a chain is as deep as it is long."""
    out = []
    stack = [node]
    while stack:
        part = stack.pop()
        if isinstance(part, Operation) and part.operator == operator:
            stack.extend(reversed(part.operands))
        else:
            out.append(part)
    return out


def _field_test(node: Node, name: str) -> frozenset[str] | None:
    """The values `observation.<name>` must have for `node` to hold, when `node` is
    `observation.<name> == 'X'` (either way round) or `observation.<name> in ['X', ...]`."""
    if not isinstance(node, Operation) or len(node.operands) != 2:
        return None
    left, right = node.operands
    if node.operator == "==":
        if not _is_observation(left, name):
            left, right = right, left
        text = _plain_string(right)
        if _is_observation(left, name) and text is not None:
            return frozenset({text})
    elif (
        node.operator == "in"
        and _is_observation(left, name)
        and isinstance(right, Operation)
        and right.operator == "[]"
    ):
        items = [_plain_string(item) for item in right.operands]
        if all(item is not None for item in items):
            return frozenset(item for item in items if item is not None)
    return None


def _unit_test(node: Node) -> str | None:
    units = _field_test(node, "unit")
    return next(iter(units)) if units is not None and len(units) == 1 else None


def _threshold(node: Node, unit: str | None) -> Threshold | None:
    if not isinstance(node, Operation) or node.operator not in _MIRROR:
        return None
    left, right = node.operands
    op = node.operator
    if not _is_observation(left, "value"):
        left, right, op = right, left, _MIRROR[op]
        if not _is_observation(left, "value"):
            return None
    if (number := _number(right)) is not None:
        return Threshold(op=op, value=number, unit=unit)
    if (
        isinstance(right, Select)
        and isinstance(right.operand, Ident)
        and right.operand.name == "params"
    ):
        return Threshold(op=op, parameter=right.name, unit=unit)
    return None


def _is_observation(node: Node, name: str) -> bool:
    return (
        isinstance(node, Select)
        and node.name == name
        and isinstance(node.operand, Ident)
        and node.operand.name == "observation"
    )


def _plain_string(node: Node) -> str | None:
    if not isinstance(node, Literal):
        return None
    match = _PLAIN_STRING.fullmatch(node.text)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _number(node: Node) -> float | None:
    sign = 1.0
    while isinstance(node, Operation) and node.operator == "-_":  # `-2.5` is read as -(2.5)
        sign, node = -sign, node.operands[0]
    if not isinstance(node, Literal):
        return None
    if _DECIMAL.fullmatch(node.text):
        return sign * float(node.text.rstrip("uU"))
    if _HEXADECIMAL.fullmatch(node.text):
        return sign * float(int(node.text.rstrip("uU"), 16))
    return None
