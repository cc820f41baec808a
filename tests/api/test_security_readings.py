"""What a patient's own account may say about the readings it posts."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from patients.models import Observation
from tests.coordination.conftest import Scene

PASSWORD = "synthetic-portal-pass"


@pytest.fixture
def patient_client(scene: Scene) -> Client:
    account = get_user_model().objects.create_user(username="portal-readings", password=PASSWORD)
    scene.patient.user = account
    scene.patient.save(update_fields=["user"])
    client = Client()
    assert (
        client.post("/login/", {"username": "portal-readings", "password": PASSWORD}).status_code
        == 302
    )
    return client


def reading(**extra: object) -> dict[str, object]:
    return {"code": "29463-7", "value": 80, "unit": "kg",
            "effective_at": timezone.now().isoformat(), **extra}  # fmt: skip


@pytest.mark.parametrize("source", ["professional", "platform"])
def test_a_patient_cannot_post_readings_as_a_professional_or_a_platform(
    scene: Scene, patient_client: Client, source: str
):
    url = f"/api/v1/patients/{scene.patient.pk}/observations/"

    one = patient_client.post(url, reading(source=source), content_type="application/json")
    batch = patient_client.post(
        url, {"items": [reading()], "source": source}, content_type="application/json"
    )

    for response in (one, batch):
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"field": "source",
             "message": f"a patient's own readings are 'patient' or 'device', not '{source}'"}
        ]  # fmt: skip
    assert not Observation.objects.filter(patient=scene.patient).exists()


@pytest.mark.parametrize(("given", "stored"), [(None, "patient"), ("device", "device")])
def test_a_patient_posts_readings_as_their_own_or_their_device_s(
    scene: Scene, patient_client: Client, given: str | None, stored: str
):
    body = reading() if given is None else reading(source=given)

    response = patient_client.post(
        f"/api/v1/patients/{scene.patient.pk}/observations/", body, content_type="application/json"
    )

    assert response.status_code == 201
    assert Observation.objects.get(patient=scene.patient).source == stored
