from __future__ import annotations

import copy
import itertools
import random
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml
from django.utils import translation

from workflows.diagrams import render_definition_svg, where_next
from workflows.shipped import LIBRARY_DIR

SVG = "{http://www.w3.org/2000/svg}"

# The sketch from docs/pathway-language.md, as a loader that reads `on` as a string key gives it.
HEART_FAILURE: dict[str, Any] = {
    "key": "hf-telemonitoring",
    "version": 1,
    "title": "Heart failure — remote monitoring after discharge",
    "roles": ["gp", "cardiologist", "nurse", "coordinator"],
    "initial": "enrolment",
    "states": {
        "enrolment": {
            "title": "Enrolment",
            "on_enter": [
                {"task": {"code": "install-scale", "title": "Install", "role": "nurse"}},
                {"timer": {"event": "no_install", "after": "P7D"}},
            ],
            "on": {"tasks_completed": "monitoring", "no_install": {"to": "closed"}},
        },
        "monitoring": {
            "on": {
                "decompensation_risk": "nurse_review",
                "stop": {"to": "closed", "roles": ["gp", "cardiologist"], "title": "Stop"},
            },
        },
        "nurse_review": {
            "on": {
                "resolved": {"to": "monitoring", "roles": ["nurse", "gp"]},
                "escalate": {"to": "closed", "roles": ["nurse"], "guard": "payload.reason != ''"},
            },
        },
        "closed": {"title": "Closed", "final": True},
    },
}


T2D: dict[str, Any] = yaml.safe_load((LIBRARY_DIR / "t2d-follow-up.yaml").read_text())
Point = tuple[float, float]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if css_class in g.get("class", "").split()]


def box(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    x, y = float(rect.get("x", "")), float(rect.get("y", ""))
    return x, y, x + float(rect.get("width", "")), y + float(rect.get("height", ""))


def first_text(group: ET.Element) -> str | None:
    return next(text.text for text in group.iter(f"{SVG}text"))


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def chain_with_random_edges(size: int, extra: int) -> dict[str, Any]:
    rng = random.Random(20240611)
    states: dict[str, Any] = {f"s{i}": {"on": {"next": f"s{i + 1}"}} for i in range(size - 1)}
    states[f"s{size - 1}"] = {"final": True}
    for k in range(extra):
        source, target = f"s{rng.randrange(size - 1)}", f"s{rng.randrange(size)}"
        states[source]["on"][f"jump_{k}"] = {"to": target, "roles": ["gp"]} if k % 2 else target
    return {"key": "big", "version": 1, "title": "Big", "initial": "s0", "states": states}


def test_output_is_a_well_formed_svg_image_titled_with_pathway_and_version() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.get("id") == root.get("aria-labelledby") == "pathway-hf-telemonitoring-1-title"
    assert title.text == "Heart failure — remote monitoring after discharge (version 1)"


def test_description_lists_states_and_transitions_in_plain_text() -> None:
    root = parse(render_definition_svg(HEART_FAILURE, current_state="monitoring"))

    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.get("id") == root.get("aria-describedby")
    assert desc.text == (
        "States: Enrolment [initial]; monitoring [current state]; nurse_review; "
        "Closed [final]. "
        "Enrolment → monitoring: All the step's tasks done (automatic). "
        "Enrolment → Closed: no_install (automatic). "
        "monitoring → nurse_review: decompensation_risk (automatic). "
        "monitoring → Closed: Stop (manual, roles General practitioner, Cardiologist). "
        "nurse_review → monitoring: resolved (manual, roles Nurse, General practitioner). "
        "nurse_review → Closed: escalate (manual, roles Nurse, under a condition)."
    )


def test_every_state_appears_once_as_a_state_group_in_document_order() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    names = [g.get("data-state") for g in groups(root, "state")]

    assert names == ["enrolment", "monitoring", "nurse_review", "closed"]


def test_every_transition_appears_with_its_event_source_and_target() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    edges = [
        (g.get("data-event"), g.get("data-from"), g.get("data-to"))
        for g in groups(root, "transition")
    ]

    assert edges == [
        ("tasks_completed", "enrolment", "monitoring"),
        ("no_install", "enrolment", "closed"),
        ("decompensation_risk", "monitoring", "nurse_review"),
        ("stop", "monitoring", "closed"),
        ("resolved", "nurse_review", "monitoring"),
        ("escalate", "nurse_review", "closed"),
    ]


def test_state_boxes_show_their_title_or_the_name_alone_when_untitled() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    texts = {
        g.get("data-state"): [t.text for t in g.iter(f"{SVG}text")] for g in groups(root, "state")
    }

    assert texts == {
        "enrolment": ["Enrolment"],
        "monitoring": ["monitoring"],
        "nurse_review": ["nurse_review"],
        "closed": ["Closed"],
    }


def test_current_state_alone_gets_class_current_and_aria_current() -> None:
    root = parse(render_definition_svg(HEART_FAILURE, current_state="monitoring"))

    current = [g.get("data-state") for g in groups(root, "current")]
    aria = [g.get("data-state") for g in root.iter(f"{SVG}g") if g.get("aria-current") == "step"]

    assert current == ["monitoring"]
    assert aria == ["monitoring"]


def test_visited_states_get_class_visited_but_the_current_one_stays_current() -> None:
    svg = render_definition_svg(
        HEART_FAILURE, current_state="monitoring", visited_states=["enrolment", "monitoring"]
    )

    root = parse(svg)

    assert [g.get("data-state") for g in groups(root, "visited")] == ["enrolment"]
    assert [g.get("data-state") for g in groups(root, "current")] == ["monitoring"]


def test_unknown_current_state_highlights_nothing() -> None:
    root = parse(render_definition_svg(HEART_FAILURE, current_state="nowhere"))

    assert groups(root, "current") == []
    assert [g for g in root.iter(f"{SVG}g") if g.get("aria-current")] == []


def test_final_states_have_class_final_and_a_double_border() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    rects = {g.get("data-state"): len(g.findall(f"{SVG}rect")) for g in groups(root, "state")}

    assert [g.get("data-state") for g in groups(root, "final")] == ["closed"]
    assert rects == {"enrolment": 1, "monitoring": 1, "nurse_review": 1, "closed": 2}


def test_initial_marker_is_a_dot_with_an_arrow_ending_on_the_initial_state() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))
    left, top, right, _ = box(groups(root, "state")[0])

    (marker,) = groups(root, "initial-marker")
    path = marker.find(f"{SVG}path")
    assert marker.find(f"{SVG}circle") is not None
    assert path is not None
    match = re.fullmatch(r"M([\d.]+),([\d.]+) V([\d.]+)", path.get("d", ""))
    assert match is not None
    assert float(match[1]) == (left + right) / 2
    assert float(match[3]) == top
    assert path.get("marker-end", "").startswith("url(#pathway-hf-telemonitoring-1")


def test_automatic_transitions_are_dashed_and_manual_ones_solid() -> None:
    root = parse(render_definition_svg(HEART_FAILURE))

    dashes = {g.get("data-event"): g.get("stroke-dasharray") for g in groups(root, "transition")}

    assert dashes == {
        "tasks_completed": "5 4",
        "no_install": "5 4",
        "decompensation_risk": "5 4",
        "stop": None,
        "resolved": None,
        "escalate": None,
    }


def test_text_with_markup_characters_is_escaped() -> None:
    document = copy.deepcopy(HEART_FAILURE)
    document["title"] = 'Soins <b>"A&B"</b>'
    document["states"]["closed"]["title"] = "<script>alert('x')</script> & co"

    svg = render_definition_svg(document)

    root = parse(svg)
    assert "<b>" not in svg
    assert "<script>" not in svg
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == 'Soins <b>"A&B"</b> (version 1)'
    assert first_text(groups(root, "final")[0]) == "<script>alert('x')</script> & co"


def test_characters_xml_forbids_are_replaced_so_the_output_still_parses() -> None:
    document = copy.deepcopy(HEART_FAILURE)
    document["states"]["closed"]["title"] = "Closed\x00\x1b"

    root = parse(render_definition_svg(document))

    assert first_text(groups(root, "final")[0]) == "Closed\ufffd\ufffd"


def test_no_scripts_external_references_or_foreign_content() -> None:
    root = parse(render_definition_svg(HEART_FAILURE, current_state="monitoring"))

    tags = {element.tag.removeprefix(SVG) for element in root.iter()}
    values = [value for element in root.iter() for value in element.attrib.values()]

    assert tags == {"svg", "title", "desc", "defs", "marker", "path", "rect", "g", "text", "circle"}
    assert [v for v in values if "url(" in v and not v.startswith("url(#")] == []
    assert [v for v in values if "http" in v or "javascript" in v] == []


def test_titles_follow_the_language_and_fall_back_to_the_other_one() -> None:
    document = copy.deepcopy(HEART_FAILURE)
    document["title"] = {"fr": "Insuffisance cardiaque", "en": "Heart failure"}
    document["states"]["enrolment"]["title"] = {"fr": "Inclusion", "en": "Enrolment"}
    document["states"]["closed"]["title"] = {"fr": "Clos"}

    root = parse(render_definition_svg(document, language="fr"))
    english = parse(render_definition_svg(document, language="en"))

    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Insuffisance cardiaque (version 1)"
    french_titles = [first_text(g) for g in groups(root, "state")]
    assert french_titles == ["Inclusion", "monitoring", "nurse_review", "Clos"]
    english_titles = [first_text(g) for g in groups(english, "state")]
    assert english_titles == ["Enrolment", "monitoring", "nurse_review", "Clos"]


def test_on_key_read_as_true_by_a_yaml_1_1_loader_is_still_drawn() -> None:
    document = copy.deepcopy(HEART_FAILURE)
    for spec in document["states"].values():
        if "on" in spec:
            spec[True] = spec.pop("on")

    root = parse(render_definition_svg(document))

    assert len(groups(root, "transition")) == 6


def test_output_is_byte_identical_for_equal_documents() -> None:
    first = render_definition_svg(
        HEART_FAILURE, current_state="monitoring", visited_states={"enrolment"}
    )

    second = render_definition_svg(
        copy.deepcopy(HEART_FAILURE), current_state="monitoring", visited_states=["enrolment"]
    )

    assert first == second


def test_state_boxes_and_edge_labels_never_overlap_each_other() -> None:
    document = chain_with_random_edges(40, 30)
    document["states"]["s5"]["on"] |= {"again": "s5", "once_more": "s5"}

    root = parse(render_definition_svg(document))

    states = [box(g) for g in groups(root, "state")]
    labels = [box(g) for g in groups(root, "transition")]  # the label's backing pill

    assert len(states) == 40
    assert [(a, b) for i, a in enumerate(states) for b in states[i + 1 :] if overlaps(a, b)] == []
    assert [(a, b) for a in labels for b in states if overlaps(a, b)] == []
    assert [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :] if overlaps(a, b)] == []


def test_back_edge_leaves_downwards_and_climbs_beside_every_box_into_its_target() -> None:
    # nurse_review's `resolved` label has `escalate`, `stop` and `no_install` on its right:
    # it climbs on the left, where it crosses none of them.
    root = parse(render_definition_svg(HEART_FAILURE))
    boxes = {g.get("data-state"): box(g) for g in groups(root, "state")}
    (resolved,) = [g for g in groups(root, "transition") if g.get("data-event") == "resolved"]
    path = resolved.find(f"{SVG}path")
    assert path is not None

    numbers = [float(n) for n in re.findall(r"-?[\d.]+", path.get("d", ""))]
    xs, ys = numbers[0::2], numbers[1::2]

    source, target = boxes["nurse_review"], boxes["monitoring"]
    assert source[0] < xs[0] < source[2]
    assert ys[0] == source[3]
    assert xs[-1] == target[0]
    assert target[1] < ys[-1] < target[3]
    assert 0 < min(xs) < min(b[0] for b in boxes.values())
    assert crossings(root) == 0


def test_a_back_edge_with_lines_on_its_left_climbs_on_the_right() -> None:
    root = parse(render_definition_svg(T2D, current_state="follow_up"))
    boxes = {g.get("data-state"): box(g) for g in groups(root, "state")}

    xs = path_points(transition(root, "hypoglycaemia_review", "resolved"))[0::2]

    assert xs[-1] == boxes["follow_up"][2]
    assert max(xs) > max(b[2] for b in boxes.values())


def test_self_loop_is_drawn_on_the_left_of_its_state() -> None:
    document = copy.deepcopy(HEART_FAILURE)
    document["states"]["monitoring"]["on"]["reading"] = "monitoring"
    root = parse(render_definition_svg(document))
    left = box(next(g for g in groups(root, "state") if g.get("data-state") == "monitoring"))[0]

    (loop,) = [g for g in groups(root, "transition") if g.get("data-event") == "reading"]

    path = loop.find(f"{SVG}path")
    assert path is not None
    xs = [float(n) for n in re.findall(r"-?[\d.]+", path.get("d", ""))][0::2]
    assert xs[0] == xs[-1] == left
    assert max(xs) == left


def test_300_state_chain_with_random_edges_renders_every_state() -> None:
    # Correctness only: how fast this renders is measured by bench/transitions.py, not here
    # (timed assertions fail on a loaded machine).
    document = chain_with_random_edges(300, 100)

    svg = render_definition_svg(document, current_state="s150")

    root = parse(svg)
    assert len(groups(root, "state")) == 300
    assert [
        g.get("data-state") for g in groups(root, "state") if "current" in g.get("class", "")
    ] == ["s150"]


def transition(root: ET.Element, source: str, event: str) -> ET.Element:
    (group,) = [
        g
        for g in groups(root, "transition")
        if (g.get("data-from"), g.get("data-event")) == (source, event)
    ]
    path = group.find(f"{SVG}path")
    assert path is not None
    return path


def path_points(path: ET.Element) -> list[float]:
    return [float(n) for n in re.findall(r"-?[\d.]+", path.get("d", ""))]


def polyline(d: str, steps: int = 12) -> list[Point]:
    """The points of an SVG path as drawn here (absolute M, L, H, V, C, Q), curves sampled."""
    tokens = re.findall(r"[MLHVCQ]|-?[\d.]+", d)
    points: list[Point] = []
    command, i = "M", 0

    def take(n: int) -> list[Point]:
        nonlocal i
        values = [float(t) for t in tokens[i : i + 2 * n]]
        i += 2 * n
        return list(zip(values[0::2], values[1::2], strict=True))

    while i < len(tokens):
        if tokens[i].isalpha():
            command, i = tokens[i], i + 1
        start = points[-1] if points else (0.0, 0.0)
        if command in "ML":
            points += take(1)
        elif command in "HV":
            value, i = float(tokens[i]), i + 1
            points.append((value, start[1]) if command == "H" else (start[0], value))
        else:
            controls = [start, *take(3 if command == "C" else 2)]
            for k in range(1, steps + 1):
                t = k / steps
                weights = (
                    [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3]
                    if command == "C"
                    else [(1 - t) ** 2, 2 * (1 - t) * t, t**2]
                )
                points.append(
                    (
                        sum(w * p[0] for w, p in zip(weights, controls, strict=True)),
                        sum(w * p[1] for w, p in zip(weights, controls, strict=True)),
                    )
                )
    return points


def _proper(a: Point, b: Point, c: Point, d: Point) -> bool:
    def turn(p: Point, q: Point, r: Point) -> int:
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return 0 if abs(v) < 1e-6 else 1 if v > 0 else -1

    return turn(a, b, c) * turn(a, b, d) < 0 and turn(c, d, a) * turn(c, d, b) < 0


def crossings(root: ET.Element) -> int:
    """Points where two drawn transitions cross (lines that merge or touch do not count)."""
    segments = []
    for group in groups(root, "transition"):
        path = group.find(f"{SVG}path")
        assert path is not None
        points = polyline(path.get("d", ""))
        segments.append(list(itertools.pairwise(points)))
    total = 0
    for first, second in itertools.combinations(segments, 2):
        found: list[Point] = []
        for a, b in first:
            for c, d in second:
                # One crossing of two curves may show on two neighbouring samples.
                if _proper(a, b, c, d) and all(
                    abs(a[0] - x) + abs(a[1] - y) >= 4 for x, y in found
                ):
                    found.append(a)
        total += len(found)
    return total


def test_the_crossing_counter_counts_a_cross_once_and_merging_lines_not_at_all() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg">'
        '<g class="transition"><path d="M0,0 L100,100"/></g>'
        '<g class="transition"><path d="M0,90 C40,90 60,30 100,30"/></g>'
        '<g class="transition"><path d="M0,0 L45,45 L45,120"/></g>'
        "</svg>"
    )

    # The curve crosses the diagonal and the bent line, which runs along the diagonal first.
    assert crossings(parse(svg)) == 2


def test_the_diabetes_pathway_is_drawn_with_few_crossings_and_nothing_overlapping() -> None:
    # Measured: 29 crossings before back edges shared lanes and could climb on the left,
    # 14 since (the 8 left between forward edges are in the layering itself).
    root = parse(render_definition_svg(T2D, current_state="follow_up", language="fr"))
    states = [box(g) for g in groups(root, "state")]
    labels = [box(g) for g in groups(root, "transition")]

    assert crossings(root) <= 14
    assert [(a, b) for a, b in itertools.combinations(states, 2) if overlaps(a, b)] == []
    assert [(a, b) for a in labels for b in states if overlaps(a, b)] == []
    assert [(a, b) for a, b in itertools.combinations(labels, 2) if overlaps(a, b)] == []


@pytest.mark.parametrize(
    ("name", "before", "bound"),
    [("t2d-follow-up", 29, 14), ("hf-telemonitoring", 15, 5), ("return-home", 12, 3)],
)
def test_every_shipped_pathway_is_drawn_with_fewer_crossings_than_before(
    name: str, before: int, bound: int
) -> None:
    document = yaml.safe_load((LIBRARY_DIR / f"{name}.yaml").read_text())

    drawn = crossings(parse(render_definition_svg(document, language="fr")))

    assert drawn <= bound < before


def test_back_edges_into_one_state_share_a_lane_per_side() -> None:
    root = parse(render_definition_svg(T2D))
    ends = set()
    for group in groups(root, "transition"):
        if group.get("data-to") == "follow_up" and group.get("data-from") not in (
            "inclusion",
            "education",
        ):
            path = group.find(f"{SVG}path")
            assert path is not None
            numbers = path_points(path)
            ends.add((numbers[-2], numbers[-1]))

    assert len(ends) == 2  # seven edges come back: one way in on the left, one on the right


def test_every_line_stays_inside_the_drawing() -> None:
    for document in (T2D, HEART_FAILURE, chain_with_random_edges(40, 30)):
        root = parse(render_definition_svg(document))
        width, height = (float(v) for v in root.get("viewBox", "").split()[2:])
        points = [
            p
            for g in groups(root, "transition")
            for path in g.iter(f"{SVG}path")
            for p in polyline(path.get("d", ""))
        ]

        assert min(x for x, _ in points) >= 0
        assert max(x for x, _ in points) <= width
        assert max(y for _, y in points) <= height


def test_where_next_names_the_step_and_where_each_way_out_leads_in_the_language() -> None:
    summary = where_next(T2D, "follow_up", language="fr")

    assert (summary.title, summary.final) == ("Suivi entre deux consultations", False)
    assert [(s.event, s.kind, s.label, s.target_title, s.roles) for s in summary.steps[:4]] == [
        (
            "visit_due",
            "timer",
            "Consultation trimestrielle à prévoir",  # the timer's title
            "Consultation trimestrielle",
            (),
        ),
        (
            "hypoglycaemia",
            "alert",
            "Hypoglycémie (< 0,70 g/L = 3,9 mmol/L)",
            "Revue d'une hypoglycémie",
            (),
        ),
        (
            "severe_hypoglycaemia",
            "alert",
            "Hypoglycémie significative (< 0,54 g/L = 3,0 mmol/L)",
            "Revue d'une hypoglycémie",
            (),
        ),
        (
            "start_annual_review",
            "manual",
            "Démarrer le bilan annuel",
            "Bilan annuel",
            ("gp", "coordinator"),
        ),
    ]
    assert len(summary.steps) == 8


def test_where_next_of_a_step_left_when_its_tasks_are_done_and_of_the_last_step() -> None:
    quarterly = where_next(T2D, "quarterly_visit", language="en")
    closed = where_next(T2D, "closed", language="en")

    assert (quarterly.steps[0].kind, quarterly.steps[0].target_title) == (
        "tasks",
        "Follow-up between visits",
    )
    assert (closed.title, closed.final, closed.steps) == ("Follow-up closed", True, ())


def test_transition_labels_read_as_event_titles_in_the_diagrams_language() -> None:
    with translation.override("fr"):
        root = parse(render_definition_svg(HEART_FAILURE, language="fr"))

    labels = {
        (g.get("data-from"), g.get("data-event")): first_text(g) for g in groups(root, "transition")
    }

    assert labels[("enrolment", "tasks_completed")] == "Tâches de l'étape faites"
    assert labels[("monitoring", "stop")] == "Stop"  # the transition's own title
    assert labels[("nurse_review", "resolved")] == "resolved"  # untitled: its name
