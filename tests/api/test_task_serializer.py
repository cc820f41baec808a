"""The task serializer's hand-written rendering gives what DRF's declared fields give."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

from api.v1.tasks import TaskSerializer
from coordination.models import Task
from tests.coordination.conftest import Scene


def _declared(task: Task) -> dict[str, object]:
    return serializers.ModelSerializer.to_representation(TaskSerializer(), task)


def test_fast_rendering_matches_the_declared_fields_on_every_field(scene: Scene):
    task = Task.objects.filter(care_pathway=scene.pathway).first()
    assert task is not None
    task.note = "Seen at home"
    task.output = {"weight_kg": 71.5, "items": ["a", "b"]}
    task.due_at = timezone.now() + dt.timedelta(hours=5, microseconds=17)
    task.ended_at = timezone.now()
    task.owner = scene.nurse
    task.title = {"fr": "Visite", "en": "Visit"}

    fast = TaskSerializer(task).data

    assert set(fast) == set(TaskSerializer.Meta.fields)
    assert fast == _declared(task)


def test_fast_rendering_matches_with_the_optional_fields_empty(scene: Scene):
    task = Task.objects.filter(care_pathway=scene.pathway).first()
    assert task is not None
    task.due_at = task.ended_at = task.owner = task.offered_team = task.care_pathway = None

    fast = TaskSerializer(task).data

    assert (fast["due_at"], fast["owner"], fast["care_pathway"]) == (None, None, None)
    assert fast == _declared(task)
