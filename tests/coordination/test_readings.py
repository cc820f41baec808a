"""Threshold lines by chart (a code in a unit) and the one rule that flags a reading abnormal
for a patient (coordination.readings), on the shipped pathways' compiled alerts."""

from __future__ import annotations

import textwrap

from coordination.readings import PatientThresholds, alert_lines, pathway_alerts
from workflows.definition import CompiledDefinition, compile_document, validate_source
from workflows.shipped import library_files


def compiled_source(source: str, filename: str) -> CompiledDefinition:
    result = validate_source(source, filename=filename)
    assert result.problems == []
    return compile_document(result.document)


def shipped(name: str) -> CompiledDefinition:
    path = next(p for p in library_files() if p.name == name)
    return compiled_source(path.read_text(encoding="utf-8"), path.name)


def thresholds_of(definition: CompiledDefinition, **values: float) -> PatientThresholds:
    params = {name: p.default for name, p in definition.monitoring.parameters.items()} | values
    found = PatientThresholds()
    for alert in pathway_alerts(definition):
        found.add(alert, params, alert_lines(alert, params, definition))
    return found


def levels(found: PatientThresholds, code: str, unit: str) -> list[tuple[str, float, str]]:
    return [(x.op, x.value, x.alert) for x in found.chart_lines(code, unit)]


def abnormal(found: PatientThresholds, code: str, value: float, unit: str, pk: int = 1) -> bool:
    return found.abnormal(observation_id=pk, code=code, value=value, unit=unit)


ONE_STEP_WATCHES = textwrap.dedent(
    """\
    key: one-step-watches
    version: 1
    title: One step watches
    roles: [nurse]
    initial: watching
    states:
      watching:
        alerts:
          - name: low-spo2
            title: {fr: "SpO2 basse", en: "Low SpO2"}
            when: "observation.code == '59408-5' && observation.value < 90"
            event: low
            role: nurse
        on: {low: review}
      review:
        on: {done: closed}
      closed: {final: true}
    """
)

UNITLESS = textwrap.dedent(
    """\
    key: unitless
    version: 1
    title: Unitless
    roles: [nurse]
    initial: watching
    monitoring:
      alerts:
        - name: low-mg
          when: "observation.code == '41653-7' && observation.value < 70"
          role: nurse
        - name: low-g
          when: "observation.code == '41653-7' && observation.value < 0.7"
          role: nurse
    states:
      watching:
        on: {done: closed}
      closed: {final: true}
    """
)


def test_glucose_lines_are_drawn_each_on_the_chart_of_the_unit_its_condition_tests():
    found = thresholds_of(shipped("t2d-follow-up.yaml"))

    assert levels(found, "41653-7", "g/L") == [
        ("<", 0.7, "hypoglycaemia"),
        ("<", 0.54, "severe-hypoglycaemia"),
    ]
    assert levels(found, "41653-7", "mg/dL") == [
        ("<", 70.0, "hypoglycaemia"),
        ("<", 54.0, "severe-hypoglycaemia"),
    ]
    assert levels(found, "14743-9", "mmol/L") == [
        ("<", 3.9, "hypoglycaemia"),
        ("<", 3.0, "severe-hypoglycaemia"),
    ]


def test_an_alert_watched_in_one_step_draws_its_line_whatever_the_step():
    definition = compiled_source(ONE_STEP_WATCHES, "one-step-watches.yaml")

    found = thresholds_of(definition)

    assert [a.name for a in definition.alerts_in(definition.state("review"))] == []
    assert levels(found, "59408-5", "%") == [("<", 90.0, "low-spo2")]


def test_a_threshold_without_unit_is_drawn_on_the_units_where_it_can_separate_readings():
    found = thresholds_of(compiled_source(UNITLESS, "unitless.yaml"))

    assert levels(found, "41653-7", "mg/dL") == [("<", 70.0, "low-mg")]
    assert levels(found, "41653-7", "g/L") == [("<", 0.7, "low-g")]


def test_a_hypoglycaemia_reading_is_abnormal_in_every_unit_and_a_normal_one_in_none():
    found = thresholds_of(shipped("t2d-follow-up.yaml"))

    assert abnormal(found, "41653-7", 0.62, "g/L")
    assert abnormal(found, "41653-7", 0.48, "g/L")
    assert abnormal(found, "41653-7", 62, "mg/dL")
    assert abnormal(found, "14743-9", 3.4, "mmol/L")
    # above the band's lower edge (54 mg/dL, 0.54 g/L, 3.0 mmol/L) but above 70 too
    assert not abnormal(found, "41653-7", 1.10, "g/L")
    assert not abnormal(found, "41653-7", 110, "mg/dL")
    assert not abnormal(found, "14743-9", 6.1, "mmol/L")


def test_a_reading_is_judged_at_the_patients_own_parameter():
    definition = shipped("hf-telemonitoring.yaml")

    usual, lowered = thresholds_of(definition), thresholds_of(definition, spo2_floor=88.0)

    assert abnormal(usual, "59408-5", 89, "%")
    assert not abnormal(lowered, "59408-5", 89, "%")
    assert abnormal(lowered, "59408-5", 87, "%")
    assert levels(lowered, "59408-5", "%") == [("<", 88.0, "low-spo2")]


def test_a_reading_that_raised_an_alert_is_abnormal_whatever_its_value():
    found = thresholds_of(shipped("hf-telemonitoring.yaml"))
    found.alerted = frozenset({7})

    assert abnormal(found, "29463-7", 81.2, "kg", pk=7)
    assert not abnormal(found, "29463-7", 81.2, "kg", pk=8)


def test_a_reading_on_a_chart_no_alert_draws_on_is_not_abnormal():
    found = thresholds_of(shipped("hf-telemonitoring.yaml"))

    assert not abnormal(found, "8310-5", 39.5, "Cel")
    assert abnormal(found, "8867-4", 128, "/min")
    assert abnormal(found, "8867-4", 45, "/min")
    assert not abnormal(found, "8867-4", 72, "/min")
