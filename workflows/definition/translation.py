"""The language of the messages the pathway language writes (validation problems).

They are written in English and marked for translation (`gettext as _`). This package does
not depend on Django, so it cannot ask Django for the reader's language itself: the host
installs a translator (workflows.apps installs Django's gettext, which answers in the
language active for the request). Without one, messages stay in English.
"""

from __future__ import annotations

from collections.abc import Callable

# The installed translator, if any: set once when the host starts; it holds no state of its
# own (Django's gettext reads the language active in the calling thread or task).
_translators: list[Callable[[str], str]] = []


def install(translator: Callable[[str], str] | None) -> None:
    """Translate every message with `translator` from now on (None: English again)."""
    _translators[:] = [translator] if translator is not None else []


def gettext(message: str) -> str:
    """`message` in the reader's language when a translator is installed."""
    return _translators[0](message) if _translators else message


def gettext_noop(message: str) -> str:
    """Marks `message` for translation where it is defined; `gettext` translates it where it
    is shown."""
    return message


class Message:
    """A message kept in English where it is made (a cached result may hold it for every
    reader) and translated each time it is shown: `str(message)`."""

    __slots__ = ("params", "text")

    def __init__(self, text: str, params: dict[str, object] | None = None) -> None:
        self.text = text  # marked with gettext_noop where written
        self.params = params or {}

    def __str__(self) -> str:
        translated = gettext(self.text)
        return translated % self.params if self.params else translated

    def __repr__(self) -> str:
        return f"Message({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return (self.text, self.params) == (other.text, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.text, tuple(sorted(self.params.items()))))
