"""How deep parsed JSON or YAML data is nested, without recursion."""

from __future__ import annotations

from typing import Any


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` (dicts and lists, as parsed from JSON or YAML) has containers more than
    `limit` levels deep. Iterative: it must work on exactly the values that recursion
    (validation, serialisation, comparison) cannot handle."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
