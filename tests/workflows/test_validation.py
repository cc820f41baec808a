"""Validation of pathway documents: one failing example per rule, located by path and line."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.definition import ValidationResult, validate_document, validate_source
from workflows.definition.compiled import compile_document

# Line numbers in the tests below refer to this text; edits keep the lines above them in place.
VALID_YAML = """\
key: demo-pathway
version: 1
title: Demo pathway
roles: [nurse, gp]
initial: intake
states:
  intake:
    on_enter:
      - task:
          code: call-patient
          title: Call the patient
          role: nurse
          due: P3D
      - timer:
          event: no_answer
          after: P7D
    alerts:
      - name: weight-gain
        when: "delta('29463-7', 'P3D') >= 2.0"
        event: risk
    on:
      tasks_completed: review
      no_answer: closed
      risk: review
  review:
    on:
      done:
        to: closed
        roles: [gp]
        guard: "payload.reason != ''"
  closed:
    final: true
"""

GUARD = "guard: \"payload.reason != ''\""
WHEN = "when: \"delta('29463-7', 'P3D') >= 2.0\""


def valid_yaml() -> str:
    return VALID_YAML


def valid_document() -> dict[str, Any]:
    document = validate_source(valid_yaml(), filename="pathway.yaml").document
    return copy.deepcopy(document)


def edited(old: str, new: str, text: str | None = None) -> str:
    """The valid text (or `text`) with `old`, which must occur exactly once, replaced."""
    text = valid_yaml() if text is None else text
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def without_top_level_key(key: str) -> str:
    lines = valid_yaml().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return "".join(lines[:start] + lines[end:])


def problems(text: str, filename: str = "pathway.yaml") -> list[tuple[str, str, int | None]]:
    result = validate_source(text, filename=filename)
    return [(p.location, p.message, p.line) for p in result.problems]


def problems_with_columns(
    text: str, filename: str = "pathway.yaml"
) -> list[tuple[str, str, int | None, int | None]]:
    result = validate_source(text, filename=filename)
    return [(p.location, p.message, p.line, p.column) for p in result.problems]


# --- the base --------------------------------------------------------------------------------


def test_valid_document_has_no_problems():
    text = valid_yaml()

    result = validate_source(text, filename="pathway.yaml")

    assert result.problems == []
    assert result.ok is True
    assert result.document["initial"] == "intake"
    assert list(result.document["states"]) == ["intake", "review", "closed"]


def test_json_form_of_a_valid_document_is_valid():
    text = json.dumps(valid_document(), indent=2)

    result = validate_source(text, filename="pathway.json")

    assert result.problems == []
    assert result.document == valid_document()


def test_json_without_a_filename_is_recognised_by_its_brace():
    text = json.dumps(valid_document())

    result = validate_source(text)

    assert result.problems == []
    assert result.document == valid_document()


def test_problems_in_json_carry_their_line():
    document = valid_document()
    document["version"] = "1"
    text = json.dumps(document, indent=2)

    found = problems(text, filename="pathway.json")

    assert found == [("version", "expected a whole number, got text", 3)]


# --- reading the text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "roles: [nurse, gp]",
            "roles: [nurse, gp",
            ("line 5, column 8", "malformed YAML: a list in [...] is not closed by ']'", 5, 8),
        ),
        (
            "title: Demo pathway",
            "title: Demo: pathway: again",
            (
                "line 3, column 12",
                "malformed YAML: mapping values are not allowed in this context",
                3,
                12,
            ),
        ),
    ],
)
def test_malformed_yaml_is_reported_with_line_and_column(old, new, expected):
    text = edited(old, new)

    found = problems_with_columns(text)

    assert found == [expected]


def test_malformed_json_is_reported_with_line_and_column():
    text = '{\n  "key": "demo-pathway",\n  "version": 1,\n}\n'

    found = problems_with_columns(text, filename="pathway.json")

    assert found == [
        (
            "line 4, column 1",
            "malformed JSON: Expecting property name enclosed in double quotes",
            4,
            1,
        )
    ]


@pytest.mark.parametrize(
    ("old", "new", "location", "line"),
    [
        ("version: 1\n", "version: 1\nversion: 2\n", "version", 3),
        (
            "      risk: review\n",
            "      risk: review\n      risk: closed\n",
            "states.intake.on.risk",
            25,
        ),
    ],
)
def test_duplicate_yaml_key_is_reported_at_its_second_occurrence(old, new, location, line):
    text = edited(old, new)

    found = problems(text)

    key = location.rsplit(".", 1)[-1]
    assert found == [(location, f"duplicate key {key!r}", line)]


def test_duplicate_json_key_is_reported_at_its_second_occurrence():
    text = json.dumps(valid_document(), indent=2)
    text = edited('  "version": 1,\n', '  "version": 1,\n  "version": 2,\n', text)

    found = problems(text, filename="pathway.json")

    assert found == [("version", "duplicate key 'version'", 4)]


def test_on_yes_and_no_keys_are_text_not_booleans():
    text = edited(
        "      no_answer: closed\n",
        "      no_answer: closed\n      yes: closed\n      no: review\n      off: closed\n",
    )

    result = validate_source(text, filename="pathway.yaml")

    assert result.problems == []
    on = result.document["states"]["intake"]["on"]
    assert list(on) == ["tasks_completed", "no_answer", "yes", "no", "off", "risk"]
    assert True not in result.document["states"]["intake"]


def test_yes_is_not_a_boolean_value_either():
    text = edited("    final: true", "    final: yes\n    title: Closed")

    found = problems(text)

    assert found == [
        ("states", "no state is final: mark at least one with 'final: true'", 6),
        ("states.closed", "not final and has no way out: add 'on' or 'final: true'", 31),
        ("states.closed.final", "expected true or false, got text", 32),
    ]


def test_plain_equals_sign_is_text():
    text = edited("title: Demo pathway", "title: =")

    result = validate_source(text, filename="pathway.yaml")

    assert result.problems == []
    assert result.document["title"] == "="


def test_merge_key_is_an_unknown_key_not_a_merge():
    text = edited("title: Demo pathway\n", "title: Demo pathway\n<<: {description: Merged}\n")

    found = problems(text)

    assert found == [
        (
            "<<",
            "unknown key '<<' (allowed: allow_concurrent, description, initial, key, "
            "monitoring, references, role_titles, roles, states, timers, title, version)",
            4,
        )
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_document_is_reported(text):
    found = validate_source(text, filename="pathway.yaml").problems

    assert [(p.location, p.message) for p in found] == [
        ("(document)", "a pathway is a mapping of keys, got empty")
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- intake\n- closed\n", "list"), ("just some text\n", "str"), ("42\n", "int")],
)
def test_top_level_that_is_not_a_mapping_is_reported(text, kind):
    found = problems(text)

    assert found == [("(document)", f"a pathway is a mapping of keys, got {kind}", 1)]


@pytest.mark.parametrize(
    ("old", "reason"),
    [
        ("version: 1", "cannot read this value as 'tag:yaml.org,2002:int'"),
        ("version: 1", "could not determine a constructor for the tag '!custom'"),
    ],
    ids=["bad-explicit-tag", "unknown-tag"],
)
def test_value_that_does_not_fit_its_tag_is_malformed_yaml(old, reason):
    tag = "!!int" if "int" in reason else "!custom"
    text = edited(old, f"version: {tag} one")

    found = problems_with_columns(text)

    assert found == [("line 2, column 10", f"malformed YAML: {reason}", 2, 10)]


def test_alias_to_a_node_containing_it_is_malformed_yaml():
    text = edited("title: Demo pathway", "title: &loop {en: *loop}")

    found = problems_with_columns(text)

    assert found == [
        ("line 3, column 8", "malformed YAML: an alias refers to a node containing it", 3, 8)
    ]


def test_aliases_expanding_to_a_huge_document_are_refused():
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(rows) + "\n"

    found = problems(text)

    assert found == [("(document)", "document too large once its aliases are expanded", None)]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "pathway.yaml",
            ("line 1, column 1016", "malformed YAML: exceeded maximum nesting depth", 1),
        ),
        ("pathway.json", ("(document)", "nested more than 64 levels deep", None)),
    ],
)
def test_deeply_nested_document_is_refused(filename, expected):
    text = '{"description": ' + "[" * 3000 + "]" * 3000 + "}"

    found = problems(text, filename=filename)

    assert found == [expected]


def test_moderately_nested_value_is_reported_not_crashed_on():
    text = edited("title: Demo pathway", "title: " + "[" * 70 + "]" * 70)

    found = problems(text)

    assert found == [("line 3, column 72", "nested more than 64 levels deep", 3)]


# --- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["key", "version", "title", "roles", "initial", "states"])
def test_missing_required_key_is_reported_at_the_document(key):
    text = without_top_level_key(key)

    found = problems(text)

    assert found == [("(document)", f"missing required key {key!r}", 1)]


def test_unknown_key_is_reported_with_a_did_you_mean_hint():
    text = edited("title: Demo pathway\n", "title: Demo pathway\ntitel: Demo\n")

    found = problems(text)

    assert found == [("titel", "unknown key 'titel'; did you mean 'title'?", 4)]


def test_unknown_key_without_close_match_lists_the_allowed_keys():
    text = edited("    final: true", "    final: true\n    colour: red")

    found = problems(text)

    assert found == [
        (
            "states.closed.colour",
            "unknown key 'colour' "
            "(allowed: alerts, description, expects, final, on, on_enter, suspends, title)",
            33,
        )
    ]


def test_version_given_as_text_is_a_type_error():
    text = edited("version: 1", "version: one")

    found = problems(text)

    assert found == [("version", "expected a whole number, got text", 2)]


def test_version_below_one_is_refused():
    text = edited("version: 1", "version: 0")

    found = problems(text)

    assert found == [("version", "must be at least 1, got 0", 2)]


def test_invalid_state_name_is_reported():
    text = valid_yaml().replace("closed", "Closed")

    found = problems(text)

    assert found == [
        (
            "states.Closed",
            "invalid name 'Closed': a state name is lower-case letters, digits and '_', "
            "starting with a letter",
            31,
        )
    ]


def test_invalid_event_name_is_reported():
    text = edited("      done:", "      Mark-Done:")

    found = problems(text)

    assert found == [
        (
            "states.review.on.Mark-Done",
            "invalid name 'Mark-Done': an event name is lower-case letters, digits and '_', "
            "starting with a letter",
            27,
        )
    ]


def test_unknown_task_priority_is_reported_with_the_allowed_values():
    text = edited("          due: P3D\n", "          due: P3D\n          priority: high\n")

    found = problems(text)

    assert found == [
        (
            "states.intake.on_enter.0.task.priority",
            "'high' is not one of: routine, urgent, asap, stat",
            14,
        )
    ]


def test_action_with_two_keys_is_reported():
    text = edited(
        "      - timer:\n",
        "      - task: {code: extra, title: Extra, role: nurse}\n        timer:\n",
    )

    found = problems(text)

    assert found == [
        (
            "states.intake.on_enter.1",
            "an action is a mapping with exactly one key: 'task' or 'timer'",
            14,
        )
    ]


def test_unknown_action_is_reported_with_the_allowed_actions():
    text = edited(
        "      - timer:\n          event: no_answer\n          after: P7D\n",
        "      - email:\n          to: gp\n",
    )

    found = problems(text)

    assert found == [
        ("states.intake.on_enter.1.email", "unknown key 'email' (allowed: task, timer)", 14)
    ]


def test_misspelt_action_gets_a_did_you_mean_hint():
    text = edited("      - timer:\n", "      - timr:\n")

    found = problems(text)

    assert found == [
        ("states.intake.on_enter.1.timr", "unknown key 'timr'; did you mean 'timer'?", 14)
    ]


def test_transition_that_is_neither_a_name_nor_a_mapping_is_reported():
    text = edited("      risk: review", "      risk: 3")

    found = problems(text)

    assert found == [
        (
            "states.intake.on.risk",
            "expected a target state name or a mapping with 'to', got a number",
            24,
        )
    ]


def test_transition_mapping_without_to_is_reported_once():
    text = edited("        to: closed\n", "")

    found = problems(text)

    assert found == [("states.review.on.done", "missing required key 'to'", 27)]


# --- initial state and targets -----------------------------------------------------------


def test_unknown_initial_state_is_reported_with_a_suggestion():
    text = edited("initial: intake", "initial: intak")

    found = problems(text)

    assert found == [("initial", "unknown initial state 'intak'; did you mean 'intake'?", 5)]


def test_unknown_initial_state_without_close_match_has_no_suggestion():
    text = edited("initial: intake", "initial: zzz")

    found = problems(text)

    assert found == [("initial", "unknown initial state 'zzz'", 5)]


def test_unknown_target_state_is_reported_at_the_event_of_the_short_form():
    text = edited("      risk: review", "      risk: reveiw")

    found = problems(text)

    assert found == [
        ("states.intake.on.risk", "unknown target state 'reveiw'; did you mean 'review'?", 24)
    ]


def test_unknown_target_state_is_reported_at_its_to():
    text = edited("        to: closed", "        to: clossed")

    found = problems(text)

    assert found == [
        ("states.review.on.done.to", "unknown target state 'clossed'; did you mean 'closed'?", 28)
    ]


# --- the graph --------------------------------------------------------------------------------


def test_unreachable_state_is_reported():
    text = edited("  closed:\n", "  orphan:\n    on:\n      go: closed\n  closed:\n")

    found = problems(text)

    assert found == [("states.orphan", "unreachable from the initial state 'intake'", 31)]


def test_non_final_state_with_no_way_out_is_reported():
    text = edited("      risk: review", "      risk: limbo")
    text = edited("  closed:\n", "  limbo:\n    title: Limbo\n  closed:\n", text)

    found = problems(text)

    assert found == [
        ("states.limbo", "not final and has no way out: add 'on' or 'final: true'", 31)
    ]


def test_document_without_any_final_state_is_reported():
    text = edited("    final: true", "    on:\n      reopen: intake")

    found = problems(text)

    assert found == [("states", "no state is final: mark at least one with 'final: true'", 6)]


def test_final_state_that_no_path_reaches_is_reported():
    text = edited("      no_answer: closed", "      no_answer: review")
    text = edited("        to: closed", "        to: intake", text)

    found = problems(text)

    assert found == [
        ("states", "no final state is reachable from the initial state", 6),
        ("states.intake", "no final state can be reached from this state", 7),
        ("states.review", "no final state can be reached from this state", 25),
        ("states.closed", "unreachable from the initial state 'intake'", 31),
    ]


def test_states_trapped_in_a_cycle_are_reported():
    text = edited("      risk: review\n", "      risk: review\n      loop: spin_a\n")
    text = edited(
        "  closed:\n",
        "  spin_a:\n    on:\n      next: spin_b\n"
        "  spin_b:\n    on:\n      back: spin_a\n"
        "  closed:\n",
        text,
    )

    found = problems(text)

    assert found == [
        ("states.spin_a", "no final state can be reached from this state", 32),
        ("states.spin_b", "no final state can be reached from this state", 35),
    ]


def test_final_state_with_transitions_is_reported():
    text = edited("    final: true", "    final: true\n    on:\n      reopen: intake")

    found = problems(text)

    assert found == [
        ("states.closed.on", "a final state ends the pathway and cannot have transitions", 33)
    ]


def test_final_state_with_alerts_is_reported_once():
    text = edited(
        "    final: true",
        "    final: true\n    alerts:\n"
        "      - name: late\n        when: observation.value > 1.0\n        event: late",
    )

    found = problems(text)

    assert found == [
        ("states.closed.alerts", "a final state cannot have alerts: nothing follows it", 33)
    ]


def test_final_state_with_timers_is_reported_once():
    text = edited(
        "    final: true",
        "    final: true\n    on_enter:\n      - timer: {event: late, after: P1D}",
    )

    found = problems(text)

    assert found == [
        (
            "states.closed.on_enter.0.timer",
            "a final state cannot start timers: nothing follows it",
            34,
        )
    ]


# --- roles, codes, names -------------------------------------------------------------------


def test_undeclared_role_in_a_task_is_reported():
    text = edited("          role: nurse", "          role: surgeon")

    found = problems(text)

    assert found == [
        (
            "states.intake.on_enter.0.task.role",
            "role 'surgeon' is not declared in 'roles' (declared: gp, nurse)",
            12,
        )
    ]


def test_undeclared_role_in_transition_roles_is_reported():
    text = edited("        roles: [gp]", "        roles: [gp, surgeon]")

    found = problems(text)

    assert found == [
        (
            "states.review.on.done.roles.1",
            "role 'surgeon' is not declared in 'roles' (declared: gp, nurse)",
            29,
        )
    ]


def test_duplicate_task_code_in_a_state_is_reported():
    text = edited(
        "      - timer:\n",
        "      - task: {code: call-patient, title: Call again, role: nurse}\n      - timer:\n",
    )

    found = problems(text)

    assert found == [
        (
            "states.intake.on_enter.1.task.code",
            "duplicate task code 'call-patient' (already used by on_enter.0)",
            14,
        )
    ]


def test_same_task_code_in_two_states_is_allowed():
    text = edited(
        "  review:\n",
        "  review:\n    on_enter:\n      - task: {code: call-patient, title: Again, role: gp}\n",
    )

    found = problems(text)

    assert found == []


def test_duplicate_alert_name_in_a_state_is_reported():
    text = edited(
        "        event: risk\n",
        "        event: risk\n"
        "      - name: weight-gain\n        when: observation.value > 1.0\n        event: risk\n",
    )

    found = problems(text)

    assert found == [
        ("states.intake.alerts.1.name", "duplicate alert name 'weight-gain' in this state", 21)
    ]


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "location", "line"),
    [
        ("due: P3D", "due: 3 days", "states.intake.on_enter.0.task.due", 13),
        ("after: P7D", "after: P7X", "states.intake.on_enter.1.timer.after", 16),
    ],
)
def test_duration_that_is_not_iso_8601_is_reported(old, new, location, line):
    text = edited(old, new)

    found = problems(text)

    value = new.split(": ", 1)[1]
    assert found == [
        (location, f"{value!r} is not an ISO-8601 duration (e.g. P3D, PT48H, P1M)", line)
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("PT0S", "'PT0S' is not positive; durations must be positive"),
        ("P0D", "'P0D' is not positive; durations must be positive"),
        ("-P7D", "'-P7D' is not positive; durations must be positive"),
        ("-P1M", "'-P1M' is negative; durations must be positive"),
    ],
)
def test_zero_or_negative_duration_is_refused(value, message):
    text = edited("after: P7D", f"after: {value}")

    found = problems(text)

    assert found == [("states.intake.on_enter.1.timer.after", message, 16)]


def test_calendar_durations_are_valid():
    text = edited("due: P3D", "due: P1M")
    text = edited("after: P7D", "after: P1Y2M", text)

    found = problems(text)

    assert found == []


# --- events the state must handle -------------------------------------------------------------


def test_timer_event_not_handled_by_the_state_is_reported():
    text = edited("event: no_answer", "event: no_reply")

    found = problems(text)

    assert found == [
        (
            "states.intake.on_enter.1.timer.event",
            "timer event 'no_reply' is not handled by this state's 'on'",
            15,
        )
    ]


def test_alert_event_not_handled_by_the_state_is_reported():
    text = edited("        event: risk", "        event: danger")

    found = problems(text)

    assert found == [
        (
            "states.intake.alerts.0.event",
            "alert event 'danger' is not handled by this state's 'on'",
            20,
        )
    ]


def test_tasks_completed_in_a_state_without_tasks_is_reported():
    text = edited("      done:\n", "      tasks_completed: closed\n      done:\n")

    found = problems(text)

    assert found == [
        (
            "states.review.on.tasks_completed",
            "tasks_completed can never fire: this state opens no task",
            27,
        )
    ]


def test_tasks_completed_with_roles_is_reported():
    text = edited(
        "      tasks_completed: review",
        "      tasks_completed:\n        to: review\n        roles: [nurse]",
    )

    found = problems(text)

    assert found == [
        (
            "states.intake.on.tasks_completed.roles",
            "tasks_completed is fired automatically and cannot name roles",
            24,
        )
    ]


# --- expressions -----------------------------------------------------------------------------


def test_guard_that_does_not_parse_is_reported():
    text = edited(GUARD, 'guard: "payload.reason !="')

    found = validate_source(text, filename="pathway.yaml").problems

    assert [(p.location, p.line) for p in found] == [("states.review.on.done.guard", 30)]
    assert found[0].message == (
        "expression does not parse: column 18: the expression stops before it is complete"
    )


def test_guard_using_an_unknown_variable_is_reported():
    text = edited(GUARD, 'guard: "patient.age > 18"')

    found = problems(text)

    assert found == [
        (
            "states.review.on.done.guard",
            "unknown variable 'patient' (available here: context, payload)",
            30,
        )
    ]


def test_guard_using_an_unknown_function_is_reported():
    text = edited(GUARD, 'guard: "shout(payload.reason)"')

    found = problems(text)

    assert found == [("states.review.on.done.guard", "unknown function 'shout'", 30)]


def test_guard_may_use_payload_context_and_standard_functions():
    text = edited(GUARD, 'guard: "size(payload.reason) > 0 && has(context.team)"')

    found = problems(text)

    assert found == []


def test_alert_condition_that_does_not_parse_is_reported():
    text = edited(WHEN, 'when: "observation.value >"')

    found = validate_source(text, filename="pathway.yaml").problems

    assert [(p.location, p.line) for p in found] == [("states.intake.alerts.0.when", 19)]
    assert found[0].message == (
        "expression does not parse: column 20: the expression stops before it is complete"
    )


def test_alert_condition_may_use_last_and_delta():
    text = edited(
        WHEN,
        "when: \"last('29463-7') > 90.0 && delta('29463-7', 'P3D') >= 2.0"
        ' && observation.value > 1.0"',
    )

    found = problems(text)

    assert found == []


@pytest.mark.parametrize("function", ["delta('29463-7', 'P3D')", "last('29463-7')"])
def test_guard_may_not_use_the_alert_functions(function):
    text = edited(GUARD, f'guard: "{function} > 1.0"')

    found = problems(text)

    name = function.split("(", 1)[0]
    assert found == [("states.review.on.done.guard", f"unknown function {name!r}", 30)]


def test_alert_condition_may_not_use_payload():
    text = edited(WHEN, 'when: "payload.weight > 90.0"')

    found = problems(text)

    assert found == [
        (
            "states.intake.alerts.0.when",
            "unknown variable 'payload' (available here: observation, params)",
            19,
        )
    ]


def test_alert_condition_with_unknown_function_lists_the_available_ones():
    text = edited(WHEN, "when: \"average('29463-7') > 90.0\"")

    found = problems(text)

    assert found == [
        (
            "states.intake.alerts.0.when",
            "unknown function 'average'; available here: delta, fall, last, news2, "
            "news2_partial, rise",
            19,
        )
    ]


@pytest.mark.parametrize(
    "guard",
    [
        "payload.items.exists(i, i > 2)",
        "payload.items.all(item, item.done)",
        "payload.items.exists_one(i, i == 'x')",
    ],
)
def test_comprehension_macros_bind_their_variable(guard):
    text = edited(GUARD, f'guard: "{guard}"')

    found = problems(text)

    assert found == []


@pytest.mark.parametrize(
    ("guard", "macro"),
    [
        ("payload.items.filter(i, i > 2).size() > 0", "filter"),
        ("payload.items.map(i, i * 2).size() > 0", "map"),
    ],
)
def test_map_and_filter_bind_their_variable_but_are_refused_for_their_cost(guard, macro):
    text = edited(GUARD, f'guard: "{guard}"')

    found = problems(text)

    assert found == [
        (
            "states.review.on.done.guard",
            f"{macro}() is not available: it copies the list it builds at every item, so its "
            "time grows with the square of the list; use all(), exists() or exists_one()",
            30,
        )
    ]


def test_comprehension_variable_does_not_leak_outside_the_macro():
    text = edited(GUARD, 'guard: "payload.items.exists(i, i > 2) && i > 0"')

    found = problems(text)

    assert found == [
        (
            "states.review.on.done.guard",
            "unknown variable 'i' (available here: context, payload)",
            30,
        )
    ]


# --- reporting ------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once():
    text = edited("version: 1", "version: one")
    text = edited("          role: nurse", "          role: surgeon", text)
    text = edited("due: P3D", "due: 3 days", text)
    text = edited("      risk: review", "      risk: reveiw", text)
    text = edited(GUARD, 'guard: "patient.age > 18"', text)

    found = problems(text)

    assert found == [
        ("version", "expected a whole number, got text", 2),
        (
            "states.intake.on_enter.0.task.role",
            "role 'surgeon' is not declared in 'roles' (declared: gp, nurse)",
            12,
        ),
        (
            "states.intake.on_enter.0.task.due",
            "'3 days' is not an ISO-8601 duration (e.g. P3D, PT48H, P1M)",
            13,
        ),
        ("states.intake.on.risk", "unknown target state 'reveiw'; did you mean 'review'?", 24),
        (
            "states.review.on.done.guard",
            "unknown variable 'patient' (available here: context, payload)",
            30,
        ),
    ]


def test_problems_are_sorted_by_line():
    # A shape problem late in the file, a role problem early, a graph problem last: the
    # validator finds them in another order than the reader meets them.
    text = edited("    final: true", "    final: true\n    colour: red")
    text = edited("          role: nurse", "          role: surgeon", text)
    text = text + "  orphan:\n    on:\n      go: closed\n"

    found = validate_source(text, filename="pathway.yaml").problems

    assert [(p.line, p.location) for p in found] == [
        (12, "states.intake.on_enter.0.task.role"),
        (33, "states.closed.colour"),
        (34, "states.orphan"),
    ]


def test_validate_document_reports_without_lines():
    document = valid_document()
    document["initial"] = "intak"

    found = validate_document(document)

    assert [(p.location, p.message, p.line) for p in found] == [
        ("initial", "unknown initial state 'intak'; did you mean 'intake'?", None)
    ]


def generated_definition(size: int) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(size - 1):
        following = f"step_{i + 1}" if i < size - 2 else "done"
        states[f"step_{i}"] = {
            "title": f"Step {i}",
            "on_enter": [
                {
                    "task": {
                        "code": f"task-{i}",
                        "title": f"Task {i}",
                        "role": "nurse",
                        "due": "P1D",
                    }
                },
                {"timer": {"event": "late", "after": "P2D"}},
            ],
            "on": {
                "tasks_completed": following,
                "late": {"to": following, "guard": f"context.step == {i}"},
                "abandon": {"to": "done", "roles": ["gp"]},
            },
        }
    states["done"] = {"final": True}
    return {
        "key": "generated",
        "version": 1,
        "title": "Generated",
        "roles": ["nurse", "gp"],
        "initial": "step_0",
        "states": states,
    }


def test_generated_300_state_definition_is_valid():
    text = yaml.safe_dump(generated_definition(300), sort_keys=False)

    result = validate_source(text, filename="generated.yaml")

    assert result.problems == []
    assert len(result.document["states"]) == 300


# --- robustness -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


def all_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += all_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            paths += all_paths(child, (*prefix, i))
    return paths


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return document


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_validate_source_never_raises_on_arbitrary_text(text):
    result = validate_source(text)

    assert isinstance(result, ValidationResult)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_validate_source_never_raises_on_arbitrary_structures_as_yaml(value):
    text = yaml.safe_dump(value)

    result = validate_source(text, filename="pathway.yaml")

    assert isinstance(result, ValidationResult)


PATHS = all_paths(valid_document())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_values, st.sampled_from(["pathway.yaml", "pathway.json"]))
def test_validate_source_never_raises_when_part_of_a_valid_document_is_replaced(
    path, value, filename
):
    document = replaced(valid_document(), path, value)
    text = json.dumps(document) if filename.endswith(".json") else yaml.safe_dump(document)

    result = validate_source(text, filename=filename)

    assert isinstance(result, ValidationResult)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.text(min_size=1))
def test_arbitrary_expressions_are_reported_not_raised(guard, when):
    document = valid_document()
    document["states"]["review"]["on"]["done"]["guard"] = guard
    document["states"]["intake"]["alerts"][0]["when"] = when

    found = validate_document(document)

    assert all(p.location.endswith((".guard", ".when")) for p in found)


def test_allow_concurrent_is_an_optional_boolean_false_by_default():
    plain = valid_document()
    several = {**plain, "allow_concurrent": True}
    wrong = {**plain, "allow_concurrent": "yes"}

    assert compile_document(plain).allow_concurrent is False
    assert compile_document(several).allow_concurrent is True
    assert validate_document(several) == []
    assert [p.location for p in validate_document(wrong)] == ["allow_concurrent"]
