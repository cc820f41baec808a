from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from directory.models import CareTeamMember, Organization, Practitioner
from directory.services import care_team_member_add, consent_set, service_team_create
from patients.models import AuditEvent, Consent
from tests.coordination.conftest import Scene, make_patient, make_practitioner, synthetic_rpps


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def new_practitioner_body(**extra: str) -> dict[str, str]:
    return {
        "username": "new-nurse",
        "given_name": "Synthetic",
        "family_name": "New Nurse",
        "profession": "nurse",
        "rpps": synthetic_rpps(),
        **extra,
    }


@pytest.fixture
def registrar(db: None) -> Any:
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_practitioner"))
    return get_user_model().objects.get(pk=practitioner.user.pk)  # fresh permission cache


def test_creating_a_practitioner_returns_its_directory_entry(registrar: Any) -> None:
    body = new_practitioner_body()

    response = client_for(registrar).post("/api/v1/practitioners/", body, format="json")

    assert response.status_code == 201
    created = Practitioner.objects.get(user__username="new-nurse")
    assert response.json() == {
        "id": created.pk,
        "display_name": "Synthetic New Nurse",
        "profession": "nurse",
        "specialty": "",
        "rpps": body["rpps"],
        "organization": None,
    }


def test_creating_a_practitioner_with_a_bad_rpps_answers_400_naming_rpps(registrar: Any) -> None:
    before = Practitioner.objects.count()

    response = client_for(registrar).post(
        "/api/v1/practitioners/", new_practitioner_body(rpps="12345678901"), format="json"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["rpps"]
    assert Practitioner.objects.count() == before


def test_creating_a_practitioner_needs_the_permission(db: None) -> None:
    nurse = make_practitioner("nurse")
    before = Practitioner.objects.count()

    response = client_for(nurse.user).post(
        "/api/v1/practitioners/", new_practitioner_body(), format="json"
    )

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-allowed")
    assert Practitioner.objects.count() == before


@pytest.mark.parametrize("duplicate", ["username", "rpps"])
def test_creating_a_duplicate_practitioner_answers_409(registrar: Any, duplicate: str) -> None:
    client = client_for(registrar)
    first = new_practitioner_body()
    client.post("/api/v1/practitioners/", first, format="json")
    second = new_practitioner_body(username="other-nurse")
    second[duplicate] = first[duplicate]
    before = Practitioner.objects.count()

    response = client.post("/api/v1/practitioners/", second, format="json")

    assert response.status_code == 409
    assert response.json()["type"].endswith("/conflict")
    assert Practitioner.objects.count() == before


def test_practitioners_me_is_the_caller_s_own_profile(db: None) -> None:
    nurse = make_practitioner("nurse")

    response = client_for(nurse.user).get("/api/v1/practitioners/me/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["rpps"]) == (nurse.pk, nurse.rpps)


def test_practitioners_me_is_404_for_a_user_who_is_not_a_practitioner(db: None) -> None:
    user = get_user_model().objects.create_user(username="not-a-practitioner")

    response = client_for(user).get("/api/v1/practitioners/me/")

    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")


def test_the_practitioner_list_is_for_professionals_only(db: None) -> None:
    nurse = make_practitioner("nurse")
    user = get_user_model().objects.create_user(username="portal-account")

    listed = client_for(nurse.user).get("/api/v1/practitioners/")
    refused = client_for(user).get("/api/v1/practitioners/")

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [nurse.pk]
    assert refused.status_code == 403


def test_creating_an_organization_needs_the_permission(db: None) -> None:
    nurse = make_practitioner("nurse")
    nurse.user.user_permissions.add(Permission.objects.get(codename="add_organization"))
    user = get_user_model().objects.get(pk=nurse.user.pk)
    body = {"name": "Cabinet Synthétique", "kind": "practice"}

    refused = client_for(make_practitioner("nurse").user).post(
        "/api/v1/organizations/", body, format="json"
    )
    created = client_for(user).post("/api/v1/organizations/", body, format="json")

    assert refused.status_code == 403
    assert created.status_code == 201
    assert list(Organization.objects.values_list("name", "kind")) == [
        ("Cabinet Synthétique", "practice")
    ]


def test_a_care_team_member_reads_the_care_team_and_the_read_is_audited(scene: Scene) -> None:
    response = client_for(scene.nurse.user).get(f"/api/v1/patients/{scene.patient.pk}/care-team/")

    assert response.status_code == 200
    assert [
        (row["role"], row["practitioner"]["id"], row["service_team"])
        for row in response.json()["results"]
    ] == [
        ("gp", scene.gp.pk, None),
        ("nurse", scene.nurse.pk, None),
        ("coordinator", scene.coordinator.pk, None),
    ]
    assert AuditEvent.objects.filter(
        action="read",
        resource_type="CareTeam",
        patient_id=scene.patient.pk,
        actor=scene.nurse.user,
        outcome="success",
    ).exists()


def test_an_outsider_gets_the_same_404_as_for_a_missing_patient(scene: Scene) -> None:
    client = client_for(scene.outsider.user)

    hidden = client.get(f"/api/v1/patients/{scene.patient.pk}/care-team/")
    missing = client.get("/api/v1/patients/999999/care-team/")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert not AuditEvent.objects.filter(
        resource_type="CareTeam", actor=scene.outsider.user, outcome="success"
    ).exists()


def test_an_outsider_cannot_add_to_the_care_team(scene: Scene) -> None:
    before = CareTeamMember.objects.count()

    response = client_for(scene.outsider.user).post(
        f"/api/v1/patients/{scene.patient.pk}/care-team/",
        {"role": "nurse", "practitioner": scene.outsider.pk},
        format="json",
    )

    assert response.status_code == 404
    assert CareTeamMember.objects.count() == before


def test_the_gp_adds_a_member_who_then_sees_the_care_team(scene: Scene) -> None:
    url = f"/api/v1/patients/{scene.patient.pk}/care-team/"

    added = client_for(scene.gp.user).post(
        url, {"role": "nurse", "practitioner": scene.outsider.pk}, format="json"
    )
    read = client_for(scene.outsider.user).get(url)

    assert added.status_code == 201
    assert (added.json()["role"], added.json()["practitioner"]["id"]) == (
        "nurse",
        scene.outsider.pk,
    )
    assert read.status_code == 200
    assert scene.outsider.pk in [
        row["practitioner"]["id"] for row in read.json()["results"] if row["practitioner"]
    ]


def test_removing_a_member_revokes_its_access(scene: Scene) -> None:
    url = f"/api/v1/patients/{scene.patient.pk}/care-team/"
    member = care_team_member_add(
        patient=scene.patient, role="nurse", practitioner=scene.outsider, actor=None
    )
    assert client_for(scene.outsider.user).get(url).status_code == 200

    removed = client_for(scene.gp.user).delete(f"{url}{member.pk}/")
    after = client_for(scene.outsider.user).get(url)

    assert removed.status_code == 204
    assert after.status_code == 404
    member.refresh_from_db()
    assert member.active is False


def test_a_member_of_another_patient_s_team_is_not_found_and_stays(scene: Scene) -> None:
    other_patient = make_patient()
    other = care_team_member_add(
        patient=other_patient, role="nurse", practitioner=scene.outsider, actor=None
    )

    response = client_for(scene.gp.user).delete(
        f"/api/v1/patients/{scene.patient.pk}/care-team/{other.pk}/"
    )

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.active is True
    assert (
        client_for(scene.outsider.user)
        .get(f"/api/v1/patients/{other_patient.pk}/care-team/")
        .status_code
        == 200
    )


def test_a_coordinator_of_the_team_may_add_even_when_sharing_was_refused(scene: Scene) -> None:
    consent_set(
        patient=scene.patient,
        scope=Consent.Scope.CARE_TEAM_SHARING,
        given=True,
        actor=None,
        entry_point="system",
    )
    consent_set(
        patient=scene.patient,
        scope=Consent.Scope.CARE_TEAM_SHARING,
        given=False,
        actor=None,
        entry_point="system",
    )
    url = f"/api/v1/patients/{scene.patient.pk}/care-team/"
    body = {"role": "nurse", "practitioner": scene.outsider.pk}

    by_gp = client_for(scene.gp.user).post(url, body, format="json")
    by_coordinator = client_for(scene.coordinator.user).post(url, body, format="json")

    assert by_gp.status_code == 404
    assert by_coordinator.status_code == 201
    assert (
        CareTeamMember.objects.filter(
            care_team__patient=scene.patient, practitioner=scene.outsider, active=True
        ).count()
        == 1
    )


def test_a_team_manager_creates_a_team_then_adds_and_removes_a_member(db: None) -> None:
    manager = make_practitioner("coordinator")
    for codename in ("add_serviceteam", "change_serviceteam"):
        manager.user.user_permissions.add(Permission.objects.get(codename=codename))
    client = client_for(get_user_model().objects.get(pk=manager.user.pk))
    nurse = make_practitioner("nurse")

    team = client.post("/api/v1/teams/", {"name": "SSIAD", "roles": ["nurse"]}, format="json")
    added = client.post(f"/api/v1/teams/{team.json()['id']}/members/", {"practitioner": nurse.pk})
    listed = client.get("/api/v1/teams/")
    removed = client.delete(f"/api/v1/teams/{team.json()['id']}/members/{nurse.pk}/")
    again = client.delete(f"/api/v1/teams/{team.json()['id']}/members/{nurse.pk}/")

    assert (team.status_code, added.status_code, removed.status_code) == (201, 201, 204)
    assert [row["members"] for row in listed.json()["results"]] == [[nurse.pk]]
    assert again.status_code == 404
    assert not nurse.user.groups.exists()


def test_changing_a_team_needs_the_permission(db: None) -> None:
    nurse = make_practitioner("nurse")
    team = service_team_create(name="SSIAD", roles=["nurse"], actor=None)

    response = client_for(nurse.user).post(
        f"/api/v1/teams/{team.pk}/members/", {"practitioner": nurse.pk}
    )

    assert response.status_code == 403
    assert not team.memberships.exists()


def test_a_nurse_of_the_care_team_may_not_change_it(scene: Scene) -> None:
    newcomer = make_practitioner("nurse")

    response = client_for(scene.nurse.user).post(
        f"/api/v1/patients/{scene.patient.pk}/care-team/",
        {"role": "nurse", "practitioner": newcomer.pk},
        format="json",
    )

    assert response.status_code == 403
    assert not CareTeamMember.objects.filter(practitioner=newcomer).exists()
