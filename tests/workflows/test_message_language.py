"""What the engine stores stays in English whatever language is active; what it answers
follows the active language."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from tests.workflows.test_engine import NURSE, T0, start
from workflows.definition.expressions import ALERT_SCOPE, check_expression
from workflows.errors import RefusalReason, TransitionRefused
from workflows.models import Timer
from workflows.services import fire_due_timers, instance_fire


@pytest.mark.django_db
def test_a_skipped_timer_keeps_its_reason_in_english_under_french(follow_up, tasks):
    instance = start()  # in `intake`
    timer = Timer.objects.create(
        instance=instance, state="monitoring", event="review_due", due_at=T0, created_at=T0
    )

    with translation.override("fr"):
        sweep = fire_due_timers(now=T0 + dt.timedelta(days=1))

    timer.refresh_from_db()
    assert sweep.skipped == [timer.pk]
    assert (timer.status, timer.note) == ("skipped", "the instance left state 'monitoring'")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "event 'stop' is not available in state 'intake' (available: abandon, "
         "tasks_completed)"),
        ("fr", "l'événement 'stop' n'est pas disponible à l'état 'intake' (disponibles : "
         "abandon, tasks_completed)"),
    ],
)  # fmt: skip
def test_a_refusal_is_written_in_the_active_language_and_keeps_its_code(
    follow_up, tasks, language: str, message: str
):
    instance = start()

    with translation.override(language), pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="stop", actor=NURSE, payload={}, now=T0)

    assert (refused.value.reason, refused.value.message) == (RefusalReason.NOT_AVAILABLE, message)


def test_a_cost_problem_follows_the_language_even_once_its_analysis_is_cached():
    source = "payload.items.exists(i, matches(i, 'x'))"
    with translation.override("en"):
        english = check_expression(source, ALERT_SCOPE)

    with translation.override("fr"):
        french = check_expression(source, ALERT_SCOPE)

    assert any(m.startswith("matches() is not available") for m in english)
    assert any(m.startswith("matches() n'est pas disponible") for m in french)
