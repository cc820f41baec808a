"""SVG diagrams of pathway definitions, drawn with a small layered (Sugiyama-style) layout.

Pure standard library so that it runs in a request, a worker or a test without graphviz or any
system package. The output is deterministic: the same document gives byte-identical SVG.

The pipeline: a DFS from the initial state finds the back edges (the ones closing a cycle); the
others give longest-path layers, top to bottom. Between two layers of states sits a row for edge
labels, and a long edge gets a bend node in every row it crosses, so labels and edges own space
that boxes never take. Barycentre sweeps order each row, least-squares placement straightens the
edges, and back edges climb in lanes to the right of the layers.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from bisect import bisect_right, insort
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from workflows.definition.compiled import CompiledDefinition, compile_document
from workflows.definition.schema import TASKS_COMPLETED
from workflows.definition.titles import event_title, role_title

BOX_H, LABEL_H, GAP, MARGIN, TOP = 46.0, 18.0, 22.0, 24.0, 52.0
TITLE_PX, NAME_PX, LABEL_PX = 13.0, 10.5, 11.0
SWEEPS, PLACEMENT_PASSES, TITLE_CHARS, LABEL_CHARS = 8, 7, 40, 26
# Colours checked against white and the highlight fills for WCAG AA (text 4.5:1, lines 3:1).
INK, MUTED, LINE, BORDER = "#111827", "#4b5563", "#334155", "#475569"
CURRENT_FILL, CURRENT_LINE = "#fff1c2", "#9a3412"
VISITED_FILL, VISITED_LINE = "#e0ebfa", "#1e4e8c"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"

# Characters that XML 1.0 forbids even when escaped; YAML/JSON can still smuggle them in.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NARROW, _WIDE = set("fijlrtI.,:;'!|()[] -"), set("mwMW@%—")

# The legend and the text alternative are read by people, so they follow the diagram's language.
_WORDS = {
    "en": {
        "states": "States",
        "manual": "manual",
        "roles": "roles",
        "automatic": "automatic",
        "guard": "under a condition",
        "current": "current state",
        "visited": "visited",
        "manual legend": "manual: fired by a role",
        "automatic legend": "automatic: timer, alert or tasks done",
    },
    "fr": {
        "states": "États",
        "manual": "manuelle",
        "roles": "rôles",
        "automatic": "automatique",
        "guard": "sous condition",
        "current": "état actuel",
        "visited": "visité",
        "manual legend": "manuelle : déclenchée par un rôle",
        "automatic legend": "automatique : minuteur, alerte ou tâches faites",
    },
}


_Attrs = dict[str, str | float]  # SVG attributes; numbers are formatted by _f


@dataclass(slots=True)
class _Node:
    kind: str  # "state"; "label" (carries an edge label) or "dummy" (a bend of a long edge)
    rank: int
    left: float  # extent left of x: a state also reserves room for its self-loops there
    right: float
    name: str = ""
    title: str = ""
    final: bool = False
    width: float = 0.0
    x: float = 0.0
    pos: int = 0
    up: list[int] = field(default_factory=list)
    down: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Edge:
    source: int
    target: int
    event: str
    manual: bool
    summary: str
    label_w: float
    kind: str = "forward"  # "forward", "back" or "loop"
    chain: list[int] = field(default_factory=list)
    x_out: float = 0.0
    x_in: float = 0.0
    path: str = ""
    label: tuple[float, float, str] = (0.0, 0.0, "middle")
    text: str = ""  # what the label reads: the event's title (workflows.definition.titles)


@dataclass(slots=True)
class _Graph:
    nodes: list[_Node]
    edges: list[_Edge]
    initial: int
    ranks: list[list[int]] = field(default_factory=list)
    tops: list[float] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def render_definition_svg(
    document: Mapping[str, Any],
    *,
    current_state: str | None = None,
    visited_states: Collection[str] = (),
    language: str = "en",
) -> str:
    """SVG (a complete standalone <svg> document as str) of a pathway definition.

    `document` is a validated pathway document. A `current_state` or `visited_states` naming
    no state is ignored. All text is escaped; the SVG has no script and no outside reference.
    """
    graph = _build(document, language)
    _layout(graph)
    return _render(graph, document, current_state, set(visited_states), language)


def _localise(value: Any, language: str, fallback: str) -> str:
    if isinstance(value, Mapping):
        for lang in (language, *value):
            text = value.get(lang)
            if isinstance(text, str) and text.strip():
                return text
    elif isinstance(value, str) and value.strip():
        return value
    return fallback


def _esc(text: str) -> str:
    return escape(_INVALID_XML.sub("\ufffd", text), {'"': "&quot;", "'": "&#39;"})


def _f(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _clip(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text_width(text: str, px: float) -> float:
    # No font metrics without a renderer: per-class averages of a sans-serif face, erring wide.
    units = 0.0
    for ch in text:
        if ch in _NARROW:
            units += 0.32
        elif ch in _WIDE:
            units += 0.86
        elif unicodedata.east_asian_width(ch) in "WF":
            units += 1.0
        else:
            units += 0.68 if ch.isupper() else 0.57
    return units * px


def _titles(document: Mapping[str, Any]) -> CompiledDefinition | None:
    """The compiled definition the labels take their titles from (workflows.definition.titles);
    None for a sketch that does not compile, which is drawn with its codes."""
    try:
        return compile_document(document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _build(document: Mapping[str, Any], language: str) -> _Graph:
    words = _WORDS.get(language, _WORDS["en"])
    definition = _titles(document)
    states: Mapping[str, Any] = document.get("states") or {}
    names = list(states)
    index = {name: i for i, name in enumerate(names)}
    nodes: list[_Node] = []
    for name in names:
        spec = states[name] or {}
        title = _localise(spec.get("title"), language, name)
        text_w = max(_text_width(_clip(title), TITLE_PX * 1.1), len(name) * NAME_PX * 0.62)
        width = 2.0 * math.ceil(max(96.0, text_w + 32) / 2)  # even, so edges land on pixels
        final = bool(spec.get("final"))
        nodes.append(_Node("state", 0, width / 2, width / 2, name, title, final, width))
    edges: list[_Edge] = []
    for source, name in enumerate(names):
        spec = states[name] or {}
        # YAML 1.1 loaders (PyYAML's safe_load among them) read the bare key `on` as True.
        for event, how in (spec.get("on") or spec.get(True) or {}).items():
            move = {"to": how} if isinstance(how, str) else dict(how)  # shorthand: target only
            target = move.get("to")
            if target not in index:
                continue  # validated documents never get here; a sketch should still render
            roles = [str(role) for role in move.get("roles") or ()]
            named = [role_title(role, language, definition) for role in roles]
            who = f"{words['manual']}, {words['roles']} {', '.join(named)}"
            who = who if roles else words["automatic"]
            # Read aloud to people: the condition is said to exist, not spelled in CEL.
            who += f", {words['guard']}" if move.get("guard") else ""
            label = str(event)
            if definition is not None:
                label = event_title(definition, name, str(event), language)
            titled = nodes[source].title, nodes[index[target]].title
            summary = f"{titled[0]} → {titled[1]}: {label} ({who})."
            # Short on the arrow (the layout's width follows its labels); the whole title is
            # in the arrow's tooltip, the diagram's description and the "what next" list.
            label = _clip(label, LABEL_CHARS)
            width = _text_width(label, LABEL_PX)
            edges.append(_Edge(source, index[target], str(event), bool(roles), summary, width))
            edges[-1].text = label
    initial = index.get(str(document.get("initial")), 0)
    return _Graph(nodes, edges, initial)


def _dfs(graph: _Graph, succ: list[list[int]]) -> tuple[set[int], list[int], list[int]]:
    """Back edges, preorder and postorder of an iterative DFS from the initial state."""
    colour = [0] * len(graph.nodes)  # 0 unseen, 1 on the stack, 2 done
    back, pre, post = set[int](), list[int](), list[int]()
    for root in [graph.initial, *range(len(graph.nodes))]:
        if colour[root]:
            continue
        colour[root] = 1
        pre.append(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            node, pending = stack[-1]
            for i in pending:
                target = graph.edges[i].target
                if colour[target] == 0:
                    colour[target] = 1
                    pre.append(target)
                    stack.append((target, iter(succ[target])))
                    break
                if colour[target] == 1:
                    back.add(i)  # target is on the stack: this edge closes a cycle
            else:
                colour[node] = 2
                post.append(node)
                stack.pop()
    return back, pre, post


def _layout(graph: _Graph) -> None:
    nodes, edges = graph.nodes, graph.edges
    succ: list[list[int]] = [[] for _ in nodes]
    for i, edge in enumerate(edges):
        succ[edge.source].append(i)
    back, pre, post = _dfs(graph, succ) if nodes else (set(), [], [])
    layer = [0] * len(nodes)
    for u in reversed(post):  # reverse postorder is topological once back edges are ignored
        for i in succ[u]:
            if i not in back:
                layer[edges[i].target] = max(layer[edges[i].target], layer[u] + 1)
    # States sit on even ranks; odd ranks hold edge labels so they get room of their own. The
    # last layer gets a label row too, for the back edges that leave it.
    graph.ranks = [[] for _ in range(2 * max(layer, default=0) + 2)]
    for u in pre:
        nodes[u].rank = 2 * layer[u]
        graph.ranks[nodes[u].rank].append(u)
    for i, edge in enumerate(edges):
        edge.kind = "loop" if edge.source == edge.target else "back" if i in back else "forward"
    loops: dict[int, list[_Edge]] = {}
    for edge in edges:
        if edge.kind == "loop":
            loops.setdefault(edge.source, []).append(edge)
    for u, group in loops.items():  # self-loops hang on the left, out of the back edges' way
        nodes[u].left += 0.75 * _loop_ext(len(group) - 1) + sum(e.label_w + 16 for e in group)
    for edge in edges:  # a back edge, too, puts its label in the row under its source
        if edge.kind == "loop":
            continue
        prev, forward = edge.source, edge.kind == "forward"
        end = nodes[edge.target].rank if forward else nodes[edge.source].rank + 2
        for rank in range(nodes[edge.source].rank + 1, end):
            half = (edge.label_w + 12) / 2 if not edge.chain else 2.0
            nodes.append(_Node("label" if not edge.chain else "dummy", rank, half, half))
            graph.ranks[rank].append(len(nodes) - 1)
            edge.chain.append(len(nodes) - 1)
        for vid in [*edge.chain, edge.target] if forward else edge.chain:
            nodes[prev].down.append(vid)
            nodes[vid].up.append(prev)
            prev = vid
    # Fewer sweeps on huge graphs (tens of thousands of bends) keep rendering under a second.
    effort = 1 if len(nodes) < 4000 else 2 if len(nodes) < 12000 else 4
    _order(graph, SWEEPS // effort)
    _place(graph, max(3, PLACEMENT_PASSES // effort))
    left = _route(graph)
    if left < MARGIN:  # back edges climb on the left too: make room for their lanes, again
        for node in nodes:
            node.x += math.ceil(MARGIN - left)
        _route(graph)


def _crossings(ranks: list[list[int]], pos: list[int], down: list[list[int]]) -> int:
    total = 0
    for upper in ranks:  # ranks are kept in position order, so segments come sorted by top
        seen: list[int] = []
        for a in upper:
            for b in sorted([pos[k] for k in down[a]]):
                total += len(seen) - bisect_right(seen, b)  # earlier segments ending right of b
                insort(seen, b)
    return total


def _order(graph: _Graph, sweeps: int) -> None:
    """Barycentre sweeps, alternately down and up, keeping the order with fewest crossings."""
    ranks, up, down = graph.ranks, [n.up for n in graph.nodes], [n.down for n in graph.nodes]
    pos = [0] * len(graph.nodes)
    for rank in ranks:
        for p, v in enumerate(rank):
            pos[v] = p
    best, best_crossings = [r[:] for r in ranks], _crossings(ranks, pos, down)
    for sweep in range(sweeps):
        near = down if sweep % 2 else up
        for r in range(len(ranks) - 2, -1, -1) if sweep % 2 else range(1, len(ranks)):
            keyed: list[tuple[float, int, int]] = []
            for v in ranks[r]:
                # A node without neighbours on that side keeps its place rather than jumping.
                keyed.append((_mean([pos[k] for k in near[v]], pos[v]), pos[v], v))
            keyed.sort()
            ranks[r] = [v for _, _, v in keyed]
            for p, v in enumerate(ranks[r]):
                pos[v] = p
        if sweep % 2:
            crossings = _crossings(ranks, pos, down)
            if crossings < best_crossings:
                best, best_crossings = [r[:] for r in ranks], crossings
    if len(graph.nodes) < 4000:  # quadratic in a row's width: for pathways, not stress tests
        for rank in best:
            for p, v in enumerate(rank):
                pos[v] = p
        _transpose(best, pos, up, down)
    graph.ranks = best
    for rank in best:
        for p, v in enumerate(rank):
            graph.nodes[v].pos = p


def _transpose(
    ranks: list[list[int]], pos: list[int], up: list[list[int]], down: list[list[int]]
) -> None:
    """Swap neighbours in a row while that removes crossings with the rows above and below.

    Barycentres place a node by the mean of its neighbours, which leaves crossings a plain
    exchange of two neighbours removes (the "transpose" step of Gansner et al., 1993).
    """

    def cost(a: int, b: int) -> int:  # crossings between a's and b's edges with a left of b
        return sum(1 for near in (up, down) for i in near[a] for j in near[b] if pos[i] > pos[j])

    for _ in range(8):
        improved = False
        for rank in ranks:
            for p in range(len(rank) - 1):
                a, b = rank[p], rank[p + 1]
                if cost(b, a) < cost(a, b):
                    rank[p], rank[p + 1] = b, a
                    pos[a], pos[b] = p + 1, p
                    improved = True
        if not improved:
            return


def _mean(values: list[float] | list[int], default: float) -> float:
    return sum(values) / len(values) if values else default


def _gap(a: _Node, b: _Node) -> float:
    return {2: 32.0, 1: 16.0, 0: 8.0}[(a.kind == "state") + (b.kind == "state")]


def _spread(want: list[float], weights: list[float], seps: list[float]) -> list[float]:
    """Weighted least-squares positions closest to `want` keeping neighbours `seps` apart.

    Subtracting the cumulative separations turns it into isotonic regression, which pool
    adjacent violators solves exactly in linear time.
    """
    offsets = [0.0, *itertools.accumulate(seps)][: len(want)]  # an empty row has no offset
    ws: list[float] = []  # blocks of nodes that ended up touching: weight, weighted sum, size
    sums: list[float] = []
    sizes: list[int] = []
    for target, weight, offset in zip(want, weights, offsets, strict=True):
        ws.append(weight)
        sums.append(weight * (target - offset))
        sizes.append(1)
        while len(ws) > 1 and sums[-2] * ws[-1] > sums[-1] * ws[-2]:
            w, total, size = ws.pop(), sums.pop(), sizes.pop()
            ws[-1], sums[-1], sizes[-1] = ws[-1] + w, sums[-1] + total, sizes[-1] + size
    flat = [total / w for w, total, size in zip(ws, sums, sizes, strict=True) for _ in range(size)]
    return [y + offset for y, offset in zip(flat, offsets, strict=True)]


def _place(graph: _Graph, passes: int) -> None:
    nodes, ranks = graph.nodes, graph.ranks
    up, down = [n.up for n in nodes], [n.down for n in nodes]
    # Heavier bends keep long edges straight; states then bend towards them.
    weight = [1.0 if n.kind == "state" else 4.0 for n in nodes]
    x = [0.0] * len(nodes)
    seps: list[list[float]] = []
    for rank in ranks:
        pairs = itertools.pairwise(nodes[v] for v in rank)
        seps.append([a.right + _gap(a, b) + b.left for a, b in pairs])
        for p, v in enumerate(rank):
            x[v] = x[rank[p - 1]] + seps[-1][p - 1] if p else 0.0
    for sweep in range(passes):
        both = sweep == passes - 1  # the last pass balances between both sides
        for r in range(len(ranks) - 1, -1, -1) if sweep % 2 else range(len(ranks)):
            want = []
            for v in ranks[r]:
                nb = up[v] + down[v] if both else down[v] if sweep % 2 else up[v]
                want.append(_mean([x[k] for k in nb], x[v]))
            spread = _spread(want, [weight[v] for v in ranks[r]], seps[r])
            for v, xv in zip(ranks[r], spread, strict=True):
                x[v] = xv
    for v, node in enumerate(nodes):
        node.x = x[v]
    _straighten(graph, seps)
    shift = MARGIN - min((n.x - n.left for n in nodes), default=0.0)
    for node in nodes:  # whole pixels: crisp lines, and ends that meet boxes exactly
        node.x = float(round(node.x + shift))
    graph.tops = [TOP]
    for r in range(1, len(ranks)):
        graph.tops.append(graph.tops[-1] + (LABEL_H if r % 2 == 0 else BOX_H) + GAP)


def _straighten(graph: _Graph, seps: list[list[float]]) -> None:
    """Line up each long edge's bends where the neighbours leave room, so it runs straight.

    Averaging leaves bends a few pixels apart, which reads as a wobble; each chain is moved
    as a whole only within the gaps around it, so nothing starts to overlap.
    """
    nodes, ranks = graph.nodes, graph.ranks
    for head, first in enumerate(nodes):
        if first.kind != "label":  # a chain of bends always starts with its label
            continue
        chain = [head]
        while nodes[chain[-1]].down and nodes[nodes[chain[-1]].down[0]].kind == "dummy":
            chain.append(nodes[chain[-1]].down[0])
        runs: list[tuple[list[int], float, float]] = []
        for v in chain:  # greedily cut the chain where no common x is left
            rank, p = ranks[nodes[v].rank], nodes[v].pos
            gaps = seps[nodes[v].rank]
            lo = nodes[rank[p - 1]].x + gaps[p - 1] if p else -math.inf
            hi = nodes[rank[p + 1]].x - gaps[p] if p + 1 < len(rank) else math.inf
            if runs and max(lo, runs[-1][1]) <= min(hi, runs[-1][2]):
                runs[-1] = ([*runs[-1][0], v], max(lo, runs[-1][1]), min(hi, runs[-1][2]))
            else:
                runs.append(([v], lo, hi))
        for run, lo, hi in runs:
            x = min(max(sorted(nodes[v].x for v in run)[len(run) // 2], lo), hi)
            for v in run:
                nodes[v].x = x


def _loop_ext(k: int) -> float:
    return 30.0 + 12.0 * k


def _ports(node: _Node, count: int) -> list[float]:
    step = min(16.0, (node.width - 24) / max(count - 1, 1))
    return [node.x + (i - (count - 1) / 2) * step for i in range(count)]


def _s_curve(x0: float, y0: float, x1: float, y1: float) -> str:
    mid = (y1 - y0) / 2
    return f"C{_f(x0)},{_f(y0 + mid)} {_f(x1)},{_f(y1 - mid)} {_f(x1)},{_f(y1)}"


def _rounded(points: list[tuple[float, float]], radius: float = 8.0) -> str:
    pts = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    parts = [f"M{_f(pts[0][0])},{_f(pts[0][1])}"]
    for (ax, ay), (bx, by), (cx, cy) in zip(pts, pts[1:], pts[2:], strict=False):
        la, lc = abs(bx - ax) + abs(by - ay), abs(cx - bx) + abs(cy - by)  # axis-aligned runs
        r = min(radius, la / 2, lc / 2)
        px, py = bx - (bx - ax) / la * r, by - (by - ay) / la * r
        qx, qy = bx + (cx - bx) / lc * r, by + (cy - by) / lc * r
        parts.append(f"L{_f(px)},{_f(py)} Q{_f(bx)},{_f(by)} {_f(qx)},{_f(qy)}")
    parts.append(f"L{_f(pts[-1][0])},{_f(pts[-1][1])}")
    return " ".join(parts)


def _route(graph: _Graph) -> float:
    """Draw every edge; sets the drawing's size. Returns the leftmost x a lane took."""
    nodes, edges, tops = graph.nodes, graph.edges, graph.tops
    outs: dict[int, list[_Edge]] = {}
    ins: dict[int, list[_Edge]] = {}
    loops: dict[int, list[_Edge]] = {}
    for edge in edges:
        if edge.kind == "loop":
            loops.setdefault(edge.source, []).append(edge)
            continue
        outs.setdefault(edge.source, []).append(edge)
        if edge.kind == "forward":
            ins.setdefault(edge.target, []).append(edge)
    for u, group in outs.items():  # spread ports in the order the edges leave, so none cross
        group.sort(key=lambda e: nodes[e.chain[0]].x)
        for edge, x in zip(group, _ports(nodes[u], len(group)), strict=True):
            edge.x_out = x
    for u, group in ins.items():
        group.sort(key=lambda e: nodes[e.chain[-1]].x)
        for edge, x in zip(group, _ports(nodes[u], len(group)), strict=True):
            edge.x_in = x
    for edge in edges:
        if edge.kind == "loop":
            continue
        x, y = edge.x_out, tops[nodes[edge.source].rank] + BOX_H
        parts = [f"M{_f(x)},{_f(y)}"]
        for v in edge.chain:
            vx, top = nodes[v].x, tops[nodes[v].rank]
            if vx != x:
                parts.append(_s_curve(x, y, vx, top))
            elif parts[-1][0] == "L":
                parts.pop()  # a straight run needs only its end point
            x, y = vx, top + (LABEL_H if nodes[v].rank % 2 else BOX_H)
            parts.append(f"L{_f(x)},{_f(y)}")
        if edge.kind == "forward":
            parts.append(_s_curve(x, y, edge.x_in, tops[nodes[edge.target].rank]))
        edge.path = " ".join(parts)
        label = nodes[edge.chain[0]]
        edge.label = (label.x, tops[label.rank] + LABEL_H / 2, "middle")
    for u, group in loops.items():
        lx, my = nodes[u].x - nodes[u].width / 2, tops[nodes[u].rank] + BOX_H / 2
        label_x = lx - 0.75 * _loop_ext(len(group) - 1) - 6
        for k, edge in enumerate(group):  # nested loops; labels side by side, within the row
            ext = _loop_ext(k)
            edge.path = f"M{_f(lx)},{_f(my - 8)} C{_f(lx - ext)},{_f(my - 24)} "
            edge.path += f"{_f(lx - ext)},{_f(my + 24)} {_f(lx)},{_f(my + 8)}"
            edge.label = (label_x, my, "end")
            label_x -= edge.label_w + 16
    left, right = _route_back_edges(graph)
    graph.width = max([right, *(n.x + n.right for n in nodes)]) + MARGIN
    used = [r for r, rank in enumerate(graph.ranks) if rank]
    bottom = tops[used[-1]] + (LABEL_H if used[-1] % 2 else BOX_H) if used else TOP
    graph.height = bottom + GAP + MARGIN
    return left


def _route_back_edges(graph: _Graph) -> tuple[float, float]:
    """Continue each back edge from its label to a lane beside the layers, up to its target.

    A back edge climbs on the right, or on the left when fewer lines leave its label's row
    on that side (so its run along the gap crosses fewer of them). The back edges into one
    state on one side share one lane and one way in: a pathway that returns to its follow-up
    from every side step draws one line climbing back, not one per step, and their runs
    cannot cross each other. The run to the lane takes the gap under the label row, so it
    crosses lines but never a box or a label. The target is entered on that side: straight
    in when no state stands beyond it, else down beside it from the gap above its layer.
    Returns the leftmost and rightmost lanes (0 when there is none).
    """
    nodes, tops = graph.nodes, graph.tops
    into: dict[tuple[int, int], list[_Edge]] = {}  # (target, side: 1 right, -1 left)
    for edge in graph.edges:
        if edge.kind == "back":
            into.setdefault((edge.target, _side(graph, edge)), []).append(edge)
    rank_right = [max((nodes[v].x + nodes[v].right for v in r), default=0.0) for r in graph.ranks]
    rank_left = [min((nodes[v].x - nodes[v].left for v in r), default=0.0) for r in graph.ranks]
    states = [[v for v in r if nodes[v].kind == "state"] for r in graph.ranks]
    outer = {  # the state at each end of a row: entered straight from a lane on that side
        1: [max(r, key=lambda v: nodes[v].pos, default=-1) for r in states],
        -1: [min(r, key=lambda v: nodes[v].pos, default=-1) for r in states],
    }
    lowest = {k: max(nodes[e.chain[0]].rank for e in group) for k, group in into.items()}
    placed: list[tuple[int, int, int, float]] = []  # side, top rank, bottom rank, lane x
    slots: _Slots = {}  # (gap, (target, side)) -> its y
    in_gap: dict[float, int] = {}  # groups already running along each gap
    # Short spans first, so they get the inner lanes.
    for key in sorted(into, key=lambda k: (lowest[k] - nodes[k[0]].rank, lowest[k], k)):
        (v, side), dst, bottom = key, nodes[key[0]], lowest[key]
        if side > 0:
            lane = max(rank_right[dst.rank : bottom + 1]) + 18
        else:
            lane = min(rank_left[dst.rank : bottom + 1]) - 18
        for other, top, low, x in placed:
            if other == side and top <= bottom and dst.rank <= low:
                lane = max(lane, x + 12) if side > 0 else min(lane, x - 12)
        placed.append((side, dst.rank, bottom, lane))
        ty = tops[dst.rank] + BOX_H / 2
        edge_x = dst.x + side * dst.width / 2
        jog = edge_x + side * 8
        straight = outer[side][dst.rank] == v
        high = ty if straight else _slot(tops[dst.rank] - GAP / 2, key, slots, in_gap)
        for edge in into[key]:
            label = nodes[edge.chain[0]]
            run = _slot(tops[label.rank] + LABEL_H + GAP / 2, key, slots, in_gap)
            points = [(label.x, tops[label.rank] + LABEL_H), (label.x, run), (lane, run)]
            points += [(lane, high)] + ([(jog, high), (jog, ty)] if high != ty else [])
            route = _rounded([*points, (edge_x, ty)])
            edge.path += " " + route.split(" ", 1)[1]  # it starts where the label left the path
    lefts = [x for side, _, _, x in placed if side < 0]
    rights = [x for side, _, _, x in placed if side > 0]
    return min(lefts, default=MARGIN), max(rights, default=0.0)


def _side(graph: _Graph, edge: _Edge) -> int:
    """1 (right) or -1 (left): the side where the edge's run to its lane crosses fewer of the
    lines going down from its label's row. A target with self-loops (drawn on its left) is
    always entered from the right, as is every tie."""
    nodes = graph.nodes
    label, target = nodes[edge.chain[0]], nodes[edge.target]
    if any(e.kind == "loop" and e.source == edge.target for e in graph.edges):
        return 1
    row = [nodes[v] for v in graph.ranks[label.rank] if nodes[v] is not label and nodes[v].down]
    left = sum(1 for n in row if n.x < label.x) + sum(1 for n in row if n.x < target.x)
    right = sum(1 for n in row if n.x > label.x) + sum(1 for n in row if n.x > target.x)
    return -1 if left < right else 1


_Slots = dict[tuple[float, tuple[int, int]], float]


def _slot(gap: float, group: tuple[int, int], slots: _Slots, used: dict[float, int]) -> float:
    """The y at which the back edges of `group` (a target and a side) run along the gap at
    `gap`: the same for all of them, a few pixels apart from other groups' runs there."""
    if (gap, group) not in slots:
        used[gap] = used.get(gap, -1) + 1
        slots[gap, group] = gap + (used[gap] % 4 - 1.5) * 4
    return slots[gap, group]


def _el(tag: str, content: str | None = None, /, **attrs: str | float | None) -> str:
    """One element; `content` is markup already. A `_` in a name is `-`, a trailing one dropped."""
    parts = [tag]
    for key, value in attrs.items():
        if value is not None:
            text = value if isinstance(value, str) else _f(value)
            parts.append(f'{key.rstrip("_").replace("_", "-")}="{_esc(text)}"')
    head = " ".join(parts)
    return f"<{head}/>" if content is None else f"<{head}>{content}</{tag}>"


def _render(
    graph: _Graph, document: Mapping[str, Any], current: str | None, visited: set[str], lang: str
) -> str:
    words, nodes = _WORDS.get(lang, _WORDS["en"]), graph.nodes
    current = current if any(n.name == current for n in nodes if n.kind == "state") else None
    visited = {n.name for n in nodes if n.kind == "state" and n.name in visited} - {current}
    title = _localise(document.get("title"), lang, str(document.get("key", "")))
    version = str(document.get("version", ""))
    ident = re.sub(r"[^A-Za-z0-9_-]", "-", f"pathway-{document.get('key', '')}-{version}")
    ident += f"-{current}" if current else ""  # two diagrams of one pathway on a page stay apart
    arrow = f"url(#{ident}-arrow)"
    marker = {"viewBox": "0 0 10 10", "refX": "10", "refY": "5", "orient": "auto"}
    marker |= {"markerWidth": "6", "markerHeight": "6", "id": f"{ident}-arrow"}
    out = [
        _el("title", _esc(f"{title} (version {version})"), id=f"{ident}-title"),
        _el("desc", _esc(_describe(graph, current, visited, words)), id=f"{ident}-desc"),
        _el("defs", _el("marker", _el("path", d="M0,0 L10,5 L0,10 z", fill=LINE), **marker)),
        _el("rect", width="100%", height="100%", fill="#ffffff"),
    ]
    for edge in graph.edges:
        x, y, anchor = edge.label
        w = edge.label_w + 10
        left = x - w / 2 if anchor == "middle" else x - w + 5  # self-loop labels end at x
        parts = [
            _el("title", _esc(edge.summary)),
            _el("path", d=edge.path, fill="none", stroke=LINE, marker_end=arrow),
            _el("rect", x=left, y=y - 8, width=w, height=16.0, rx=8.0, fill="#ffffff"),
            _el("text", _esc(edge.text or edge.event), x=x, y=y + 4, text_anchor=anchor),
        ]
        names = {"data_from": nodes[edge.source].name, "data_to": nodes[edge.target].name}
        kind = {"class_": "transition " + ("manual" if edge.manual else "automatic")}
        # Dashes and italics are inherited; the arrowhead is not, so it stays solid.
        look = {} if edge.manual else {"stroke_dasharray": "5 4", "font_style": "italic"}
        out.append(_el("g", "".join(parts), **kind, data_event=edge.event, **names, **look))
    out += [_render_state(graph, n, current, visited) for n in nodes if n.kind == "state"]
    if nodes:
        start, top = nodes[graph.initial], graph.tops[nodes[graph.initial].rank]
        dot = _el("circle", cx=start.x, cy=top - 34, r=6.0, fill=LINE)
        line = f"M{_f(start.x)},{_f(top - 28)} V{_f(top)}"
        line = _el("path", d=line, stroke=LINE, marker_end=arrow)
        out.append(_el("g", dot + line, class_="initial-marker", aria_hidden="true"))
    x, y, legend = MARGIN, graph.height + 10, list[str]()
    items: list[tuple[str, _Attrs]] = [("manual", {})]
    items.append(("automatic", {"stroke_dasharray": "5 4"}))
    if current:
        items.append(
            ("current", {"fill": CURRENT_FILL, "stroke": CURRENT_LINE, "stroke_width": 3.0})
        )
    if visited:
        items.append(("visited", {"fill": VISITED_FILL, "stroke": VISITED_LINE}))
    for item, style in items:
        if "fill" in style:
            legend.append(_el("rect", x=x, y=y - 7, width=28.0, height=14.0, rx=4.0, **style))
        else:
            legend.append(_el("path", d=f"M{_f(x)},{_f(y)} h28", stroke=LINE, **style))
        text = words.get(f"{item} legend", words[item])
        legend.append(_el("text", _esc(text), x=x + 34, y=y + 4, text_anchor="start"))
        x += 58 + _text_width(text, LABEL_PX)
    out.append(_el("g", "".join(legend), class_="legend", aria_hidden="true"))
    width, height = max(graph.width, x + MARGIN), graph.height + 28
    root: _Attrs = {"xmlns": "http://www.w3.org/2000/svg", "id": ident}
    root |= {"width": width, "height": height, "viewBox": f"0 0 {_f(width)} {_f(height)}"}
    root |= {
        "role": "img",
        "aria_labelledby": f"{ident}-title",
        "aria_describedby": f"{ident}-desc",
    }
    # Presentation attributes, not CSS: a page with a strict style-src policy keeps the colours.
    root |= {"font_family": FONT, "font_size": LABEL_PX, "fill": INK, "stroke_width": 1.5}
    return _el("svg", "\n" + "\n".join(out) + "\n", **root, text_anchor="middle") + "\n"


def _render_state(graph: _Graph, node: _Node, current: str | None, visited: set[str]) -> str:
    x, top, w = node.x - node.width / 2, graph.tops[node.rank], node.width
    look: _Attrs = {"fill": "#ffffff", "stroke": BORDER}
    state = {"class_": "state final" if node.final else "state", "data_state": node.name}
    if node.name == current:
        look = {"fill": CURRENT_FILL, "stroke": CURRENT_LINE, "stroke_width": 3.0}
        state |= {"class_": state["class_"] + " current", "aria_current": "step"}
    elif node.name in visited:
        look = {"fill": VISITED_FILL, "stroke": VISITED_LINE}
        state["class_"] += " visited"
    named = node.title
    box = _el("rect", x=x, y=top, width=w, height=BOX_H, rx=10.0, **look)
    parts = [_el("title", _esc(named)), box]
    if node.final:  # the conventional double border of an end state
        inner = {"width": w - 8, "height": BOX_H - 8, "rx": 7.0, "stroke": look["stroke"]}
        parts.append(_el("rect", x=x + 4, y=top + 4, fill="none", stroke_width=1.0, **inner))
    if node.title == node.name:
        parts.append(_el("text", _esc(node.name), x=node.x, y=top + 27, font_family=MONO))
    else:  # the title only: the state's code is for the document, not for the reader
        parts.append(_el("text", _esc(_clip(node.title)), x=node.x, y=top + 27, font_weight="600"))
    return _el("g", "".join(parts), **state, font_size=TITLE_PX)


def _describe(graph: _Graph, current: str | None, visited: set[str], words: dict[str, str]) -> str:
    parts = []
    for i, node in enumerate(n for n in graph.nodes if n.kind == "state"):
        flags = ["initial"] if i == graph.initial else []
        flags += ["final"] if node.final else []
        flags += [words["current"]] if node.name == current else []
        flags += [words["visited"]] if node.name in visited else []
        text = node.title
        parts.append(text + (f" [{', '.join(flags)}]" if flags else ""))
    text = f"{words['states']}: {'; '.join(parts)}."
    return text + "".join(f" {edge.summary}" for edge in graph.edges)


@dataclass(frozen=True, slots=True)
class NextStep:
    """One way out of the current step, for the "where am I / what next" summary."""

    event: str
    label: str  # the transition's title in the language; "" when the definition names none
    target: str
    target_title: str
    roles: tuple[str, ...]  # who may fire it; empty: the system does (timer, alert, tasks)
    kind: str  # "manual", "tasks" (all tasks done), "timer", "alert" or "automatic"


@dataclass(frozen=True, slots=True)
class WhereNext:
    state: str
    title: str
    final: bool
    steps: tuple[NextStep, ...]


def _event_label(
    document: Mapping[str, Any],
    event: str,
    move: Mapping[str, Any],
    lang: str,
    definition: CompiledDefinition | None = None,
) -> str:
    """The words for an event: the transition's title, else the title the definition gives
    the event elsewhere (workflows.definition.titles: another transition's, the alert's or
    the timer's that fires it), else "" (tasks_completed included: the page words it)."""
    title = _localise(move.get("title"), lang, "")
    if title:
        return title
    if definition is not None:
        if event == TASKS_COMPLETED:
            return ""
        label = event_title(definition, None, event, lang)
        return "" if label == event else label
    monitoring = document.get("monitoring") or {}
    for alert in monitoring.get("alerts") or ():
        if isinstance(alert, Mapping) and alert.get("event") == event:
            return _localise(alert.get("title"), lang, "")
    return ""


def where_next(document: Mapping[str, Any], state: str, *, language: str = "en") -> WhereNext:
    """The current step's title and every transition out of it, in the author's order: the
    text a phone shows above (or instead of) the diagram. Titles in `language`, never codes
    unless the definition has no title for them."""
    states: Mapping[str, Any] = document.get("states") or {}
    spec = states.get(state) or {}
    timers = {
        str(action["timer"].get("event"))
        for action in spec.get("on_enter") or ()
        if isinstance(action, Mapping) and isinstance(action.get("timer"), Mapping)
    }
    alerts = {
        str(a.get("event"))
        for a in ((document.get("monitoring") or {}).get("alerts") or ())
        if isinstance(a, Mapping)
    }
    steps = []
    definition = _titles(document)
    for event, how in (spec.get("on") or spec.get(True) or {}).items():
        move = {"to": how} if isinstance(how, str) else dict(how)
        target = str(move.get("to", ""))
        roles = tuple(str(role) for role in move.get("roles") or ())
        kind = (
            "manual"
            if roles
            else "tasks"
            if event == "tasks_completed"
            else "timer"
            if event in timers
            else "alert"
            if event in alerts
            else "automatic"
        )
        steps.append(
            NextStep(
                event=str(event),
                label=_event_label(document, str(event), move, language, definition),
                target=target,
                target_title=_localise((states.get(target) or {}).get("title"), language, target),
                roles=roles,
                kind=kind,
            )
        )
    title = _localise(spec.get("title"), language, state)
    return WhereNext(state, title, bool(spec.get("final")), tuple(steps))
