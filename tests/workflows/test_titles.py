"""Titles of a pathway's codes in the reader's language: roles (`role_titles`, else a built-in
title of the common roles), events (the transition's own title, else the alert's or the
timer's that fires it, else the built-in title of tasks_completed), never the code where a
title exists."""

from __future__ import annotations

import textwrap

import pytest
from django.utils import translation

from workflows.definition import compile_document, validate_source
from workflows.definition.parsing import parse_source
from workflows.definition.titles import alert_title, event_title, role_title, task_title
from workflows.shipped import library_files

SOURCE = textwrap.dedent(
    """
    key: titled
    version: 1
    title: {fr: Parcours titré, en: Titled pathway}
    roles: [gp, nurse, wound_specialist]
    role_titles:
      nurse: {fr: Infirmier·ère à domicile, en: Home nurse}
    initial: start
    monitoring:
      measurements: ["29463-7"]
      alerts:
        - name: weight-gain
          title: {fr: Prise de poids, en: Weight gain}
          when: "observation.code == '29463-7' && observation.value > 100.0"
          event: weight_alert
          role: nurse
    timers:
      - event: year_over
        after: P1Y
        title: {fr: Fin de la première année, en: First year over}
    states:
      start:
        title: {fr: Début, en: Start}
        on_enter:
          - task: {code: visit, title: {fr: Visite, en: Visit}, role: nurse}
          - timer:
              event: stalled
              after: P30D
              title: {fr: Rien après 30 jours, en: Nothing after 30 days}
        on:
          tasks_completed: review
          weight_alert: review
          year_over: done
          stalled: done
          untitled: done
          stop: {to: done, roles: [gp], title: {fr: Arrêter, en: Stop}}
      review:
        title: {fr: Revue, en: Review}
        on:
          stop: {to: done, roles: [gp]}
      done: {final: true, title: {fr: Terminé, en: Done}}
    """
)


@pytest.fixture
def definition():
    result = validate_source(SOURCE, filename="titled.yaml")
    assert result.problems == []
    return compile_document(result.document)


@pytest.mark.parametrize(
    ("language", "nurse", "gp", "unknown"),
    [
        ("fr", "Infirmier·ère à domicile", "Médecin traitant", "wound_specialist"),
        ("en", "Home nurse", "General practitioner", "wound_specialist"),
    ],
)
def test_a_role_reads_as_the_pathway_titles_it_else_by_its_common_title_else_its_name(
    definition, language, nurse, gp, unknown
):
    with translation.override(language):
        titles = [role_title(r, language, definition) for r in ("nurse", "gp", "wound_specialist")]

    assert titles == [nurse, gp, unknown]


def test_a_common_role_without_a_definition_reads_in_the_active_language():
    with translation.override("fr"):
        assert role_title("device_supplier", "fr") == "Prestataire de dispositifs"
    with translation.override("en"):
        assert role_title("device_supplier", "en") == "Device supplier"


@pytest.mark.parametrize(
    ("state", "event", "fr", "en"),
    [
        ("start", "tasks_completed", "Tâches de l'étape faites",
         "All the step's tasks done"),
        ("start", "weight_alert", "Prise de poids", "Weight gain"),
        ("start", "year_over", "Fin de la première année", "First year over"),
        ("start", "stalled", "Rien après 30 jours", "Nothing after 30 days"),
        ("start", "stop", "Arrêter", "Stop"),
        ("review", "stop", "Arrêter", "Stop"),  # the same event's title elsewhere
        ("start", "untitled", "untitled", "untitled"),
    ],
)  # fmt: skip
def test_an_event_reads_as_its_transition_alert_timer_or_built_in_title(
    definition, state, event, fr, en
):
    with translation.override("fr"):
        french = event_title(definition, state, event, "fr")
    with translation.override("en"):
        english = event_title(definition, state, event, "en")

    assert (french, english) == (fr, en)


def test_alerts_and_tasks_read_as_their_titles(definition):
    assert alert_title(definition, "weight-gain", "fr") == "Prise de poids"
    assert task_title(definition, "visit", "en") == "Visit"
    assert task_title(definition, "alert-weight-gain", "fr") == "Prise de poids"


def test_titling_a_role_the_pathway_does_not_declare_is_a_problem():
    source = SOURCE.replace("  nurse: {fr: Infirmier", "  nurze: {fr: Infirmier")

    problems = validate_source(source, filename="titled.yaml").problems

    assert [(p.location, p.message) for p in problems] == [
        (
            "role_titles.nurze",
            "role 'nurze' is not declared in 'roles' (declared: gp, nurse, wound_specialist)",
        )
    ]


def test_a_pathway_without_role_titles_stays_valid_and_has_none():
    source = SOURCE.replace(
        "role_titles:\n  nurse: {fr: Infirmier·ère à domicile, en: Home nurse}\n", ""
    )

    result = validate_source(source, filename="titled.yaml")

    assert result.problems == []
    assert compile_document(result.document).role_titles == {}


@pytest.mark.parametrize("path", library_files(), ids=lambda p: p.stem)
def test_shipped_pathways_title_every_role_and_event_in_french_and_english(path):
    definition = compile_document(parse_source(path.read_text(encoding="utf-8"), "yaml").document)

    untitled_roles = [
        r for r in definition.roles if set(definition.role_titles.get(r, {})) != {"fr", "en"}
    ]
    untitled_events = [
        (state.name, event, language)
        for state in definition.states.values()
        for event in state.transitions
        for language in ("fr", "en")
        if event_title(definition, state.name, event, language) == event
    ]

    assert untitled_roles == []
    assert untitled_events == []
