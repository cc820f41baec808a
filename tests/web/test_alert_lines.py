"""The threshold lines the patient page draws for every alert of every shipped pathway, and what
each alert is restricted to when readings are evaluated: read from the compiled definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.care import alert_lines
from workflows.definition import CompiledDefinition, compile_document, validate_source
from workflows.definition.compiled import AlertSpec
from workflows.shipped import library_files

FIXTURE = Path(__file__).resolve().parent.parent / "coordination/fixtures/hf-telemonitoring-v1.yaml"

HF_DYSPNOEA_ETC = frozenset({"hf-dyspnoea", "hf-oedema", "hf-fatigue", "hf-orthopnoea"})
GLUCOSE = frozenset({"41653-7", "14743-9"})


def compiled(path: Path) -> CompiledDefinition:
    result = validate_source(path.read_text(encoding="utf-8"), filename=path.name)
    assert result.problems == []
    return compile_document(result.document)


def every_alert(definition: CompiledDefinition) -> dict[tuple[str, str], AlertSpec]:
    """By (where declared, alert name): `monitoring`, or `states.<name>`."""
    found = {("monitoring", a.name): a for a in definition.monitoring.alerts}
    for state in definition.states.values():
        found |= {(f"states.{state.name}", a.name): a for a in state.alerts}
    return found


def defaults(definition: CompiledDefinition) -> dict[str, float]:
    return {name: p.default for name, p in definition.monitoring.parameters.items()}


def line(value: float, op: str, label: str) -> dict[str, object]:
    return {"value": value, "op": op, "label": label}


# What the patient page drew before conditions were read from their syntax tree (regular
# expressions over the text), at the parameters' defaults.
EXPECTED_LINES = {
    "hf-telemonitoring.yaml": {
        ("monitoring", "weight-gain"): {},
        ("monitoring", "low-spo2"): {"59408-5": [line(90.0, "<", "SpO2 below the floor")]},
        ("monitoring", "abnormal-heart-rate"): {
            "8867-4": [
                line(120.0, ">", "Heart rate out of range"),
                line(50.0, "<", "Heart rate out of range"),
            ]
        },
        ("monitoring", "worsening-symptoms"): {},
    },
    "return-home.yaml": {},
    "t2d-follow-up.yaml": {
        ("monitoring", "hypoglycaemia"): {},
        ("monitoring", "severe-hypoglycaemia"): {},
    },
    "hf-telemonitoring-v1.yaml": {
        **{
            (where, "weight-gain"): {} for where in ("states.monitoring", "states.renewal_decision")
        },
        **{
            (where, "low-spo2"): {"59408-5": [line(90.0, "<", "SpO2 below 90 %")]}
            for where in ("states.monitoring", "states.renewal_decision")
        },
        **{
            (where, "abnormal-heart-rate"): {
                "8867-4": [
                    line(120.0, ">", "Heart rate above 120 or below 50/min"),
                    line(50.0, "<", "Heart rate above 120 or below 50/min"),
                ]
            }
            for where in ("states.monitoring", "states.renewal_decision")
        },
    },
}

# The codes each alert's condition is false for all others of (None: not restricted).
EXPECTED_ONLY_CODES = {
    "hf-telemonitoring.yaml": {
        ("monitoring", "weight-gain"): frozenset({"29463-7"}),
        ("monitoring", "low-spo2"): frozenset({"59408-5"}),
        ("monitoring", "abnormal-heart-rate"): frozenset({"8867-4"}),
        ("monitoring", "worsening-symptoms"): HF_DYSPNOEA_ETC,
    },
    "return-home.yaml": {},
    "t2d-follow-up.yaml": {
        ("monitoring", "hypoglycaemia"): GLUCOSE,
        ("monitoring", "severe-hypoglycaemia"): GLUCOSE,
    },
    "hf-telemonitoring-v1.yaml": {
        (where, name): frozenset({code})
        for where in ("states.monitoring", "states.renewal_decision")
        for name, code in (
            ("weight-gain", "29463-7"),
            ("low-spo2", "59408-5"),
            ("abnormal-heart-rate", "8867-4"),
        )
    },
}

PATHWAYS = [*library_files(), FIXTURE]


def test_every_shipped_pathway_is_compared():
    assert sorted(p.name for p in PATHWAYS) == sorted(EXPECTED_LINES) == sorted(EXPECTED_ONLY_CODES)


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.name)
def test_the_patient_page_draws_the_same_lines_for_every_shipped_alert(path: Path):
    definition = compiled(path)

    drawn = {
        where: alert_lines(alert, defaults(definition), "en")
        for where, alert in every_alert(definition).items()
    }

    assert drawn == EXPECTED_LINES[path.name]


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.name)
def test_every_shipped_alert_is_restricted_to_the_codes_it_tests_first(path: Path):
    definition = compiled(path)

    restricted = {where: alert.only_codes for where, alert in every_alert(definition).items()}

    assert restricted == EXPECTED_ONLY_CODES[path.name]


def test_a_line_is_drawn_at_the_patients_value_of_the_parameter_in_their_language():
    definition = compiled(next(p for p in library_files() if p.name == "hf-telemonitoring.yaml"))
    alert = every_alert(definition)[("monitoring", "low-spo2")]

    drawn = alert_lines(alert, {"spo2_floor": 88.0}, "fr")

    assert drawn == {"59408-5": [line(88.0, "<", "SpO2 sous le seuil")]}


def test_no_line_is_drawn_for_a_parameter_without_a_value():
    definition = compiled(next(p for p in library_files() if p.name == "hf-telemonitoring.yaml"))
    alert = every_alert(definition)[("monitoring", "low-spo2")]

    assert alert_lines(alert, {}, "en") == {}
