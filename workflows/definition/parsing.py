"""Parsing YAML or JSON sources, keeping the line and column of every node.

PyYAML's composer gives each node its position; we walk the node tree once to build both the
Python value and a map from dotted paths to positions, and to report duplicate keys (which
YAML loaders otherwise resolve silently by keeping the last one).
"""

from __future__ import annotations

import gc
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from core.nesting import nested_deeper_than
from workflows.definition.problems import Problem
from workflows.definition.translation import gettext as _
from workflows.definition.translation import gettext_noop

# What PyYAML says of the commonest mistakes, in words a reader may have translated; any other
# reason is quoted as PyYAML gives it.
_YAML_REASONS = {
    "did not find expected ',' or ']'": gettext_noop("a list in [...] is not closed by ']'"),
    "did not find expected ',' or '}'": gettext_noop("a mapping in {...} is not closed by '}'"),
    "mapping values are not allowed here": gettext_noop(
        "a ':' where no key may start (quote text that contains ': ')"
    ),
    "did not find expected key": gettext_noop("a line is not indented like its neighbours"),
    "did not find expected '-' indicator": gettext_noop(
        "a list item is not indented like the others"
    ),
    "could not find expected ':'": gettext_noop("a key is not followed by ':'"),
    "found character '\\t' that cannot start any token": gettext_noop(
        "a tab character: indent with spaces"
    ),
    "found unexpected end of stream": gettext_noop("the text ends inside a quoted value"),
    "found undefined alias": gettext_noop("an alias (*name) refers to no anchor (&name)"),
}


def _yaml_reason(reason: str) -> str:
    known = _YAML_REASONS.get(reason)
    if known is not None:
        return _("malformed YAML: %(reason)s") % {"reason": _(known)}
    if reason.startswith("expected <block end>"):
        return _("malformed YAML: %(reason)s") % {
            "reason": _("a line is not indented like its neighbours")
        }
    return _("malformed YAML: %(reason)s") % {"reason": reason or _("syntax error")}


Format = Literal["yaml", "json"]

try:  # libyaml is bundled in PyYAML's wheels; the pure-Python loader is the fallback.
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the wheel
    _Base = yaml.SafeLoader

_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
# YAML 1.1 types that YAML 1.2 dropped and SafeLoader cannot build on its own: a plain `=`
# (the "value" type) and the `<<` merge key. Read as the text they look like.
_DROPPED = {_BOOL, "tag:yaml.org,2002:value", "tag:yaml.org,2002:merge"}


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """YAML with the booleans of YAML 1.2: only true/false.

    YAML 1.1 reads `on`, `off`, `yes`, `no` as booleans, which would turn every state's
    `on:` key into `True`. Pathway authors write YAML 1.2 without knowing it.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class ParsedSource:
    document: Any
    root: yaml.Node | None = None  # the composed node tree, for positions
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: str) -> tuple[int, int] | None:
        """Line and column of `path` (a mapping entry is located at its key), or of its
        nearest ancestor that exists. Found by walking the node tree on demand: only
        documents with problems need positions, so valid ones do not pay for them."""
        node = self.root
        if node is None:
            return None
        found = _position(node)
        if path == "(document)":
            return found
        for part in path.split("."):
            if isinstance(node, yaml.MappingNode):
                entry = next(
                    (
                        (k, v)
                        for k, v in reversed(node.value)  # the last one wins, as in the value
                        if isinstance(k, yaml.ScalarNode) and k.value == part
                    ),
                    None,
                )
                if entry is None:
                    return found
                found, node = _position(entry[0]), entry[1]
            elif isinstance(node, yaml.SequenceNode) and part.isdigit():
                if int(part) >= len(node.value):
                    return found
                node = node.value[int(part)]
                found = _position(node)
            else:
                return found
        return found


def guess_format(filename: str | None, text: str) -> Format:
    if filename and filename.lower().endswith(".json"):
        return "json"
    if filename and filename.lower().endswith((".yaml", ".yml")):
        return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


def parse_source(text: str, fmt: Format) -> ParsedSource:
    # A large document allocates tens of thousands of small containers and none of them
    # form cycles: the cyclic garbage collector would run many times for nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_json(text) if fmt == "json" else _parse_yaml(text)
    finally:
        if enabled:
            gc.enable()


def _parse_json(text: str) -> ParsedSource:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return ParsedSource(
            None,
            problems=[
                Problem(
                    f"line {exc.lineno}, column {exc.colno}",
                    _("malformed JSON: %(reason)s") % {"reason": exc.msg},
                    exc.lineno,
                    exc.colno,
                )
            ],
        )
    except RecursionError:
        document = _TOO_DEEP
    if document is _TOO_DEEP or nested_deeper_than(document, MAX_DEPTH):
        problem = Problem("(document)", _("nested more than %(n)s levels deep") % {"n": MAX_DEPTH})
        return ParsedSource(None, problems=[problem])
    # JSON is (nearly) a subset of YAML: composing it gives positions and duplicate keys (which
    # json.loads resolves silently) for free. If that fails on some exotic escape, the document
    # is still fine, just without positions.
    parsed = _parse_yaml(text)
    if parsed.document is None or parsed.document != document:
        return ParsedSource(document)
    return ParsedSource(document, parsed.root, parsed.problems)


_TOO_DEEP = object()


def _parse_yaml(text: str) -> ParsedSource:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        location = f"line {line}, column {column}" if line else "(document)"
        message = _yaml_reason(exc.problem or exc.context or "")
        return ParsedSource(None, problems=[Problem(location, message, line, column)])
    except yaml.YAMLError as exc:
        message = _("malformed YAML: %(reason)s") % {"reason": exc}
        return ParsedSource(None, problems=[Problem("(document)", message)])
    if node is None:
        return ParsedSource(None)
    result = ParsedSource(None, root=node)
    try:
        result.document = _Builder(result).build(node, "")
    except _Unreadable as exc:
        return ParsedSource(None, problems=[exc.problem])
    return result


# A pathway is a few levels deep and a few thousand nodes; these bounds only stop documents
# that would exhaust the stack or, through aliases ("billion laughs"), memory and time.
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_CHARACTERS = 10_000_000


class _Unreadable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Builder:
    """Builds the value of a composed node tree, reporting duplicate keys into `out`.

    Aliases are expanded (the same node may be visited many times), so the work done is
    counted against MAX_NODES and MAX_CHARACTERS rather than against the text's length.
    """

    def __init__(self, out: ParsedSource) -> None:
        self.out = out
        self.constructor = yaml.SafeLoader("")
        self.nodes = 0
        self.characters = 0
        self.open: set[int] = set()  # the collections being built, to catch alias cycles

    def build(self, node: yaml.Node, path: str, depth: int = 0, record: bool = True) -> Any:
        """`path` is the node's dotted location ("" for the root), built as we descend rather
        than joined from a tuple at every node: this walk is most of a large file's parse."""
        self.nodes += 1
        if node.__class__ is yaml.ScalarNode:
            self.characters += len(node.value)
        if self.nodes > MAX_NODES or self.characters > MAX_CHARACTERS:
            raise _Unreadable(
                Problem("(document)", _("document too large once its aliases are expanded"))
            )
        if depth > MAX_DEPTH:
            raise _Unreadable(_at(node, _("nested more than %(n)s levels deep") % {"n": MAX_DEPTH}))
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self._scalar(node)
        if id(node) in self.open:
            raise _Unreadable(_at(node, "malformed YAML: an alias refers to a node containing it"))
        self.open.add(id(node))
        prefix = f"{path}." if path else ""
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, f"{prefix}{i}", depth + 1, record)
                    for i, item in enumerate(node.value)
                ]
            return self._mapping(node, prefix, depth, record)
        finally:
            self.open.discard(id(node))

    def _mapping(
        self, node: yaml.MappingNode, prefix: str, depth: int, record: bool
    ) -> dict[Any, Any]:
        value: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = self._scalar(key_node)
            else:  # a list or mapping used as a key: only ever reported as an unknown key
                key = self.build(key_node, prefix.rstrip("."), depth + 1, record=False)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            child = f"{prefix}{key}"
            if record and key in value:
                self.out.problems.append(
                    Problem(
                        child,
                        _("duplicate key %(key)s") % {"key": repr(str(key))},
                        *_position(key_node),
                    )
                )
            value[key] = self.build(value_node, child, depth + 1, record)
        return value

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR:  # most scalars: no need for the constructor's machinery
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as exc:
            # An explicit tag on a value that does not fit it (`!!int abc`, `!!bool x`), an
            # unknown tag, a merge key: PyYAML's constructors raise several exception types.
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else None
            reason = reason or f"cannot read this value as {node.tag!r}"
            raise _Unreadable(_at(node, f"malformed YAML: {reason}")) from exc


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at(node: yaml.Node, message: str) -> Problem:
    line, column = _position(node)
    return Problem(f"line {line}, column {column}", message, line, column)
