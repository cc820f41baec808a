"""Through /api/v1/patients/ with a personal API token: an INS number that contradicts the
sex or birth date it encodes is a 400 naming both fields, and nothing is stored."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from patients.identifiers import nir_key
from patients.models import AuditEvent, Patient
from tests.coordination.conftest import Scene

TEST_NIR_OID = "1.2.250.1.213.1.4.10"


def token_client(user) -> APIClient:
    session = APIClient()
    session.force_authenticate(user)
    created = session.post("/api/v1/tokens/", {"name": "registration"}, format="json")
    assert created.status_code == 201, created.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.json()['token']}")
    return client


def synthetic_nir(sex_year_month: str) -> str:
    number = f"{sex_year_month}75056999"
    return number + nir_key(number)


def fields(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


def test_create_with_a_nir_of_the_other_sex_is_400_naming_both_and_stores_nothing(
    scene: Scene,
):
    user = scene.coordinator.user
    user.user_permissions.add(Permission.objects.get(codename="add_patient"))
    client = token_client(user)
    patients_before = Patient.objects.count()
    creations_before = AuditEvent.objects.filter(action="create").count()
    payload = {
        "family_name": "Synthétique",
        "given_names": "Claire",
        "birth_date": "1985-05-12",
        "sex": "female",
        "ins_nir": synthetic_nir("18505"),
        "ins_oid": TEST_NIR_OID,
    }

    response = client.post("/api/v1/patients/", payload, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert fields(response) == ["ins_nir", "sex"]
    assert "sex" in response.json()["errors"][0]["message"]
    assert "ins_nir" in response.json()["errors"][1]["message"]
    assert Patient.objects.count() == patients_before
    assert AuditEvent.objects.filter(action="create").count() == creations_before

    agreeing = client.post(
        "/api/v1/patients/", {**payload, "ins_nir": synthetic_nir("28505")}, format="json"
    )
    assert agreeing.status_code == 201, agreeing.content


def test_patching_only_the_birth_date_is_checked_against_the_stored_nir(scene: Scene):
    client = token_client(scene.gp.user)
    url = f"/api/v1/patients/{scene.patient.pk}/"
    born = scene.patient.birth_date
    nir = synthetic_nir(f"2{born:%y%m}")
    given = client.patch(
        url,
        {"ins_nir": nir, "ins_oid": TEST_NIR_OID},
        format="json",
        HTTP_IF_MATCH=f'"p{scene.patient.version}"',
    )
    assert given.status_code == 200, given.content
    version = given.json()["version"]
    other_year = born.replace(year=born.year - 1)

    response = client.patch(
        url,
        {"birth_date": other_year.isoformat()},
        format="json",
        HTTP_IF_MATCH=f'"p{version}"',
    )

    assert response.status_code == 400
    assert fields(response) == ["ins_nir", "birth_date"]
    stored = Patient.objects.get(pk=scene.patient.pk)
    assert (stored.birth_date, stored.ins_nir, stored.version) == (born, nir, version)
