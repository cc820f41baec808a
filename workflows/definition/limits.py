"""The limits that bound what evaluating a guard or an alert condition can cost.

The CEL runtime has no cost budget and holds the GIL for a whole evaluation: one slow
evaluation stalls every thread of its process (a nested comprehension over a 300-item
payload list took 4 s here, 18 s in production). So the cost is bounded before evaluation,
by two sets of limits that hold each other up:

- an expression is small and shaped so that its work is linear in the data it reads
  (`expressions.cost_problems`, checked when a definition is validated and again before
  every evaluation);
- the data it reads, an event's payload and an instance's context, is small
  (`data_problems`, checked before an event is fired or an instance started).

Measured on the CEL binding (common-expression-language 0.10.0, cel-rust 0.14) on a 2-core
machine, the costs these limits keep in check:
- turning the data into CEL values: about 1 µs per value, at every evaluation;
- naming a variable copies its value (about 50 ns per value), and `a + b` copies both sides,
  so a chain of k concatenations copies k²/2 values: hence a cap on how often an expression
  names its variables;
- map() and filter() copy the list built so far at every item (1000 items: 30-180 ms), so
  they are refused; all(), exists() and exists_one() are linear;
- a variable other than the loop variable named inside a comprehension is copied at every
  item (1000 items of a 1000-value payload: 150 ms), so it is refused;
- a regular expression compiles at every call and runs in time proportional to the size of
  its automaton times the text ('(a{100}){100}' on 16 KB: 460 ms), so matches() is refused.

tests/workflows/test_expression_cost.py evaluates the costliest expressions these limits
allow on the largest data they allow and holds them under 100 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_EXPRESSION_LENGTH = 1000  # characters
MAX_EXPRESSION_DEPTH = 32  # nested brackets, calls and `?:`
MAX_EXPRESSION_NAMES = 16  # times an expression names a variable
MAX_CONDITION_LENGTH = 200  # characters, in all, inside all(), exists() and exists_one()

MAX_DATA_BYTES = 64 * 1024  # of JSON text
MAX_DATA_VALUES = 500  # every object, list, text, number, true, false and null counts one
MAX_DATA_DEPTH = 10  # objects and lists inside one another


def data_problem(value: Mapping[str, Any], name: str) -> str | None:
    """Why `value` (a payload or a context, already known to be a mapping) is too large to be
    read by a guard, naming where; None when it is within the limits. Does not check that it
    is JSON, nor its size in bytes, which needs it encoded (`MAX_DATA_BYTES`).

    Walks `value` without recursion and stops at the first value past a limit, so an
    arbitrarily deep or long value costs no more than the limits to check."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(value, name, 1)]
    while stack:
        item, path, depth = stack.pop()
        count += 1
        if count > MAX_DATA_VALUES:
            return (
                f"{path}: {name} holds more than {MAX_DATA_VALUES} values "
                "(every object, list, text, number, true, false and null counts one)"
            )
        if isinstance(item, (Mapping, list, tuple)):
            if depth > MAX_DATA_DEPTH:
                return f"{path}: nested more than {MAX_DATA_DEPTH} levels deep in {name}"
            if len(item) > MAX_DATA_VALUES:
                return (
                    f"{path}: {len(item)} items; {name} holds at most "
                    f"{MAX_DATA_VALUES} values in all"
                )
            if isinstance(item, Mapping):
                children = [(v, f"{path}.{k}", depth + 1) for k, v in item.items()]
            else:
                children = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item)]
            stack.extend(reversed(children))
    return None


def size_problem(encoded: str, name: str) -> str | None:
    """Why `encoded`, the JSON text of a payload or a context, is too large; None if it is
    not. (json.dumps escapes every non-ASCII character, so its length is its size in bytes.)"""
    if len(encoded) > MAX_DATA_BYTES:
        return f"{name} is larger than {MAX_DATA_BYTES} bytes of JSON ({len(encoded)})"
    return None
