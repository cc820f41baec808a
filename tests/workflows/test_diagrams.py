from __future__ import annotations

import copy
import random
import re
import xml.etree.ElementTree as ET
from typing import Any

from django.utils import translation

from workflows.diagrams import render_definition_svg

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
        "Enrolment → monitoring: All tasks of the step done (automatic). "
        "Enrolment → Closed: no_install (automatic). "
        "monitoring → nurse_review: decompensation_risk (automatic). "
        "monitoring → Closed: Stop (manual, roles General practitioner, Cardiologist). "
        "nurse_review → monitoring: resolved (manual, roles Nurse, General practitioner). "
        "nurse_review → Closed: escalate (manual, roles Nurse, guard payload.reason != '')."
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


def test_back_edge_leaves_downwards_and_climbs_right_of_every_box_into_its_target() -> None:
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
    assert xs[-1] == target[2]
    assert target[1] < ys[-1] < target[3]
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


def test_transition_labels_read_as_event_titles_in_the_diagrams_language() -> None:
    with translation.override("fr"):
        root = parse(render_definition_svg(HEART_FAILURE, language="fr"))

    labels = {
        (g.get("data-from"), g.get("data-event")): first_text(g) for g in groups(root, "transition")
    }

    assert labels[("enrolment", "tasks_completed")] == "Toutes les tâches de l'étape terminées"
    assert labels[("monitoring", "stop")] == "Stop"  # the transition's own title
    assert labels[("nurse_review", "resolved")] == "resolved"  # untitled: its name
