from __future__ import annotations

from rest_framework.test import APIClient

from coordination.models import AlertRecord, Task
from patients.models import Observation
from tests.coordination.conftest import Scene
from tests.coordination.test_alerts import DAY, SPO2, T0, WEIGHT, frozen, monitored, state_of

__all__ = ["frozen", "monitored"]


def post(scene: Scene, body: object):
    client = APIClient()
    client.force_authenticate(scene.nurse.user)
    return client.post(f"/api/v1/patients/{scene.patient.pk}/observations/", body, format="json")


def reading(code: str, value: str, unit: str, at) -> dict[str, str]:
    return {"code": code, "value": value, "unit": unit, "effective_at": at.isoformat()}


def test_a_batch_through_the_api_raises_the_weight_alert(monitored: Scene):
    items = [
        reading(WEIGHT, "80", "kg", T0 - 2 * DAY),
        reading(WEIGHT, "81", "kg", T0 - DAY),
        reading(WEIGHT, "82.1", "kg", T0),
    ]

    response = post(monitored, {"items": items})

    assert response.status_code == 201
    assert response.json()["count"] == 3
    assert state_of(monitored.pathway) == "nurse_review"
    assert list(AlertRecord.objects.values_list("name", "fired")) == [("weight-gain", True)]


def test_a_single_observation_through_the_api_raises_the_spo2_alert(monitored: Scene):
    response = post(monitored, reading(SPO2, "86", "%", T0))

    assert response.status_code == 201
    assert list(Task.objects.filter(code="alert-low-spo2").values_list("status", flat=True)) == [
        "ready"
    ]


def test_a_negative_weight_through_the_api_is_400_and_raises_nothing(monitored: Scene):
    response = post(monitored, {"items": [reading(WEIGHT, "-3", "kg", T0)]})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["items.0.value"]
    assert not Observation.objects.exists()
    assert not AlertRecord.objects.exists()
    assert state_of(monitored.pathway) == "monitoring"


def test_an_unknown_unit_through_the_api_is_400_and_raises_nothing(monitored: Scene):
    response = post(monitored, reading(SPO2, "80", "percent", T0))

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["unit"]
    assert not AlertRecord.objects.exists()
    assert not Task.objects.filter(code__startswith="alert-").exists()
