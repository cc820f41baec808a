"""A validation problem: where it is and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a pathway document.

    `location` is a dotted path into the document (`states.nurse_review.on.escalate.to`), or
    `line L, column C` for a document that does not parse. `line`/`column` are 1-based and
    present when the source text is known.
    """

    location: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, filename: str | None = None) -> str:
        where = (
            f" (line {self.line})" if self.line is not None and "line" not in self.location else ""
        )
        text = f"{self.location}: {self.message}{where}"
        return f"{filename}: {text}" if filename else text


def dotted(path: Sequence[str | int]) -> str:
    """`("states", "a", "on_enter", 0)` -> `states.a.on_enter.0`; the root is `(document)`."""
    return ".".join(str(part) for part in path) if path else "(document)"


class InvalidDefinition(Exception):
    """Raised by services given a document that does not validate; carries every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        summary = "; ".join(p.format() for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"invalid pathway definition: {summary}{more}")
