"""Starting a pathway the patient already follows, through the REST API."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.coordination.conftest import Scene
from tests.coordination.test_pathway_start import start_counts


def test_the_api_answers_409_naming_the_running_pathway_and_creates_nothing(scene: Scene):
    client = APIClient()
    client.force_authenticate(scene.gp.user)
    before = start_counts()

    response = client.post(
        "/api/v1/pathways/", {"patient": scene.patient.pk, "pathway": "care-test"}, format="json"
    )

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/conflict")
    assert f"care pathway {scene.pathway.pk} (care-test version 1" in response.json()["detail"]
    assert start_counts() == before
