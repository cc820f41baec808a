"""The shipped pathways: valid, loadable, and runnable from start to a final state."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
from django.core.management import call_command

from workflows.actors import SYSTEM
from workflows.definition import validate_source
from workflows.models import PathwayDefinition
from workflows.selectors import compiled_definition, instance_diagram_svg
from workflows.services import instance_fire, instance_start
from workflows.shipped import library_files

FILES = library_files()


def test_the_library_ships_the_three_reference_pathways():
    assert sorted(path.name for path in FILES) == [
        "hf-telemonitoring.yaml",
        "return-home.yaml",
        "t2d-follow-up.yaml",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_pathway_is_valid(path: Path):
    result = validate_source(path.read_text(encoding="utf-8"), filename=path.name)

    assert result.problems == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_pathway_cites_the_guidance_it_follows(path: Path):
    header = path.read_text(encoding="utf-8").split("\nkey:", 1)[0]

    assert "HAS" in header or "Assurance Maladie" in header


@pytest.mark.django_db
def test_loading_the_library_twice_changes_nothing():
    call_command("load_pathway", *[str(p) for p in FILES], stdout=None)
    first = list(PathwayDefinition.objects.values_list("key", "version", "status", "checksum"))

    call_command("load_pathway", *[str(p) for p in FILES], stdout=None)

    assert sorted(first) == sorted(
        PathwayDefinition.objects.values_list("key", "version", "status", "checksum")
    )
    assert sorted(k for k, *_ in first) == ["hf-telemonitoring", "return-home", "t2d-follow-up"]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["hf-telemonitoring", "return-home", "t2d-follow-up"])
def test_shipped_pathway_runs_from_start_to_a_final_state(key: str, tasks):
    call_command("load_pathway", *[str(p) for p in FILES], stdout=None)
    definition = PathwayDefinition.objects.get(key=key)
    compiled = compiled_definition(definition)
    path = _shortest_path_to_final(compiled)
    instance = instance_start(key=key, actor=SYSTEM, context={"synthetic": True})

    for event in path:
        payload = _payload_for(compiled, instance.state, event)
        instance = instance_fire(
            instance_id=instance.pk, event=event, actor=SYSTEM, payload=payload
        ).instance

    assert instance.status == "completed"
    assert compiled.state(instance.state).final
    svg = instance_diagram_svg(instance, language="fr")
    assert f'data-state="{instance.state}"' in svg
    assert 'aria-current="step"' in svg


def _shortest_path_to_final(compiled) -> list[str]:
    queue: deque[tuple[str, list[str]]] = deque([(compiled.initial, [])])
    seen = {compiled.initial}
    while queue:
        state, events = queue.popleft()
        if compiled.state(state).final:
            return events
        for event, transition in compiled.state(state).transitions.items():
            if transition.target not in seen:
                seen.add(transition.target)
                queue.append((transition.target, [*events, event]))
    raise AssertionError("no final state reachable")


# Enough to satisfy every guard of the shipped pathways on the way to a final state.
PAYLOAD = {
    "reason": "synthetic run",
    "letter_handed_to_patient": True,
    "needs_physio": True,
    "foot_risk_grade": 2,
}


def _payload_for(compiled, state: str, event: str) -> dict[str, object]:
    return PAYLOAD if compiled.state(state).transitions[event].guard else {}
