"""The threshold lines the patient page draws for every alert of every shipped pathway, and what
each alert is restricted to when readings are evaluated: read from the compiled definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.readings import Line, alert_lines
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


def line(code: str, unit: str, value: float, op: str) -> tuple[str, str, float, str]:
    return (code, unit, value, op)


HYPO_BAND = [
    line("41653-7", "mg/dL", 70.0, "<"),
    line("41653-7", "mg/dL", 54.0, ">="),
    line("41653-7", "g/L", 0.7, "<"),
    line("41653-7", "g/L", 0.54, ">="),
    line("14743-9", "mmol/L", 3.9, "<"),
    line("41653-7", "mmol/L", 3.9, "<"),  # readings stored in mmol/L under 41653-7
    line("14743-9", "mmol/L", 3.0, ">="),
    line("41653-7", "mmol/L", 3.0, ">="),
]

# The lines each alert draws at the parameters' defaults, by chart (code, unit): a glucose
# threshold on the chart of the unit its condition tests, never mg/dL levels over g/L readings.
EXPECTED_LINES = {
    "hf-telemonitoring.yaml": {
        ("monitoring", "weight-gain"): [],  # a rise over 3 days: no level to draw
        ("monitoring", "low-spo2"): [line("59408-5", "%", 90.0, "<")],
        ("monitoring", "abnormal-heart-rate"): [
            line("8867-4", "/min", 120.0, ">"),
            line("8867-4", "/min", 50.0, "<"),
        ],
        ("monitoring", "worsening-symptoms"): [
            line(code, "{score}", 2.0, ">=")
            for code in ("hf-dyspnoea", "hf-fatigue", "hf-oedema", "hf-orthopnoea")
        ],
    },
    "return-home.yaml": {},
    "t2d-follow-up.yaml": {
        ("monitoring", "hypoglycaemia"): HYPO_BAND,
        ("monitoring", "severe-hypoglycaemia"): [
            line("41653-7", "mg/dL", 54.0, "<"),
            line("41653-7", "g/L", 0.54, "<"),
            line("14743-9", "mmol/L", 3.0, "<"),
            line("41653-7", "mmol/L", 3.0, "<"),
        ],
    },
    "hf-telemonitoring-v1.yaml": {
        **{
            (where, "weight-gain"): [] for where in ("states.monitoring", "states.renewal_decision")
        },
        **{
            (where, "low-spo2"): [line("59408-5", "%", 90.0, "<")]
            for where in ("states.monitoring", "states.renewal_decision")
        },
        **{
            (where, "abnormal-heart-rate"): [
                line("8867-4", "/min", 120.0, ">"),
                line("8867-4", "/min", 50.0, "<"),
            ]
            for where in ("states.monitoring", "states.renewal_decision")
        },
    },
}


def drawn_lines(lines: list[Line]) -> list[tuple[str, str, float, str]]:
    return [(x.code, x.unit, x.value, x.op) for x in lines]


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
        where: drawn_lines(alert_lines(alert, defaults(definition), definition))
        for where, alert in every_alert(definition).items()
    }

    assert drawn == EXPECTED_LINES[path.name]


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.name)
def test_every_shipped_alert_is_restricted_to_the_codes_it_tests_first(path: Path):
    definition = compiled(path)

    restricted = {where: alert.only_codes for where, alert in every_alert(definition).items()}

    assert restricted == EXPECTED_ONLY_CODES[path.name]


def test_a_line_is_drawn_at_the_patients_value_of_the_parameter():
    definition = compiled(next(p for p in library_files() if p.name == "hf-telemonitoring.yaml"))
    alert = every_alert(definition)[("monitoring", "low-spo2")]

    drawn = alert_lines(alert, {"spo2_floor": 88.0}, definition)

    assert drawn_lines(drawn) == [line("59408-5", "%", 88.0, "<")]
    assert drawn[0].title == alert.title


def test_no_line_is_drawn_for_a_parameter_without_a_value():
    definition = compiled(next(p for p in library_files() if p.name == "hf-telemonitoring.yaml"))
    alert = every_alert(definition)[("monitoring", "low-spo2")]

    assert alert_lines(alert, {}, definition) == []
