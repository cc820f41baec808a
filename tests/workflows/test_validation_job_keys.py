"""The keys the background jobs read: a task's `escalate_to`, an alert's `role`, a state's
`expects`."""

from __future__ import annotations

import textwrap

from workflows.definition import validate_source
from workflows.definition.compiled import ExpectationSpec, compile_document

DOCUMENT = textwrap.dedent(
    """\
    key: keys-demo
    version: 1
    title: Keys demo
    roles: [nurse, gp, coordinator]
    initial: watch
    states:
      watch:
        on_enter:
          - task: {code: call, title: Call, role: nurse, due: P1D, escalate_to: ESCALATE}
        expects:
          - {code: 'CODE', every: EVERY, role: ROLE}
        alerts:
          - {name: low-spo2, when: "observation.value < 90.0", event: risk, role: ALERT_ROLE}
        on:
          risk: closed
          tasks_completed: closed
      closed: {final: true}
    """
)


def document(
    escalate: str = "gp",
    code: str = "29463-7",
    every: str = "P3D",
    role: str = "nurse",
    alert_role: str = "nurse",
) -> str:
    return (
        DOCUMENT.replace("ESCALATE", escalate)
        .replace("CODE", code)
        .replace("EVERY", every)
        .replace("ALERT_ROLE", alert_role)
        .replace("ROLE", role)
    )


def problems(text: str) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in validate_source(text, fmt="yaml").problems]


def test_the_job_keys_are_valid_and_compiled():
    result = validate_source(document(), fmt="yaml")

    assert result.problems == []
    state = compile_document(result.document).state("watch")
    assert state.tasks[0].escalate_to == "gp"
    assert state.alerts[0].role == "nurse"
    assert state.expects == (ExpectationSpec(code="29463-7", every="P3D", role="nurse"),)


def test_escalate_to_an_undeclared_role_is_reported():
    found = problems(document(escalate="cardiologist"))

    assert found == [
        (
            "states.watch.on_enter.0.task.escalate_to",
            "role 'cardiologist' is not declared in 'roles' (declared: coordinator, gp, nurse)",
        )
    ]


def test_an_alert_role_that_is_not_declared_is_reported():
    found = problems(document(alert_role="pharmacist"))

    assert found == [
        (
            "states.watch.alerts.0.role",
            "role 'pharmacist' is not declared in 'roles' (declared: coordinator, gp, nurse)",
        )
    ]


def test_an_expected_measurement_needs_a_loinc_code_and_a_positive_duration():
    found = problems(document(code="weight", every="P0D"))

    assert [location for location, _ in found] == [
        "states.watch.expects.0.code",
        "states.watch.expects.0.every",
    ]
    assert found[1][1] == "'P0D' is not positive; durations must be positive"


def test_an_expected_measurement_for_an_undeclared_role_is_reported():
    found = problems(document(role="dietitian"))

    assert found == [
        (
            "states.watch.expects.0.role",
            "role 'dietitian' is not declared in 'roles' (declared: coordinator, gp, nurse)",
        )
    ]
