"""The one cache of hand-written statements' text.

A statement on a hot path is written once per process and shape, from the models' metadata
(names quoted by `table` and `column`, every value a parameter), then reused: building the
text anew on each call costs more Python than the database spends on a short statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_TEXTS: dict[Hashable, Any] = {}


def statement(build: Callable[P, T]) -> Callable[P, T]:
    """Decorate a function that writes a statement's text (or an object holding the texts of
    a few statements run together): its result is kept for each combination of arguments
    (which must be hashable) and returned as is afterwards.

    The text may depend only on the arguments and on the models' metadata, never on a
    value that changes at run time: values go in as parameters."""

    @functools.wraps(build)
    def text(*args: P.args, **kwargs: P.kwargs) -> T:
        key = (build, args, tuple(sorted(kwargs.items())))
        try:
            found: T = _TEXTS[key]
        except KeyError:
            # Two threads may build the same text at once: they build equal texts.
            found = _TEXTS[key] = build(*args, **kwargs)
        return found

    return text


def statements_clear() -> None:
    """Forget every text (for tests that change the models' metadata or the database)."""
    _TEXTS.clear()
