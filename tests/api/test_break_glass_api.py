"""Break the glass over the API: an outsider with the permission opens the record read-only
for a while, every read is audited as an emergency, and the care team's coordinator sees
who did it, when, why and until when."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from coordination.models import Task
from patients.models import AuditEvent, BreakGlassGrant, Patient
from tests.coordination.conftest import Scene


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def emergency_doctor(scene: Scene):
    user = scene.outsider.user
    user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    return type(user).objects.get(pk=user.pk)


def break_glass(user, patient: Patient, reason: str = "unconscious in A&E"):
    return client_for(user).post(
        f"/api/v1/patients/{patient.pk}/break-glass/", {"reason": reason}, format="json"
    )


def test_breaking_the_glass_opens_the_record_and_its_pathways_and_tasks(scene, emergency_doctor):
    client = client_for(emergency_doctor)
    assert client.get(f"/api/v1/patients/{scene.patient.pk}/").status_code == 404

    response = break_glass(emergency_doctor, scene.patient)

    assert response.status_code == 201
    body = response.json()
    assert (body["user"], body["reason"], body["active"]) == (
        emergency_doctor.pk,
        "unconscious in A&E",
        True,
    )
    assert client.get(f"/api/v1/patients/{scene.patient.pk}/").status_code == 200
    assert client.get(f"/api/v1/pathways/{scene.pathway.pk}/").status_code == 200
    tasks = client.get("/api/v1/tasks/", {"patient": scene.patient.pk}).json()["results"]
    assert {t["id"] for t in tasks} == set(
        Task.objects.filter(patient=scene.patient).values_list("pk", flat=True)
    )


def test_reads_during_a_break_glass_are_audited_as_emergency(scene, emergency_doctor):
    break_glass(emergency_doctor, scene.patient)

    client_for(emergency_doctor).get(f"/api/v1/patients/{scene.patient.pk}/")

    read = AuditEvent.objects.filter(action="read", actor=emergency_doctor).latest("id")
    grant = BreakGlassGrant.objects.get()
    assert (read.purpose, read.detail) == ("emergency", {"break_glass_grant": grant.pk})
    member_read = client_for(scene.nurse.user).get(f"/api/v1/patients/{scene.patient.pk}/")
    assert member_read.status_code == 200
    nurse_event = AuditEvent.objects.filter(action="read", actor=scene.nurse.user).latest("id")
    assert nurse_event.purpose == "care_coordination"


def test_a_break_glass_grant_is_read_only(scene, emergency_doctor):
    break_glass(emergency_doctor, scene.patient)
    client = client_for(emergency_doctor)
    version = Patient.objects.get(pk=scene.patient.pk).version

    patched = client.patch(
        f"/api/v1/patients/{scene.patient.pk}/", {"city": "Elsewhere"}, format="json",
        HTTP_IF_MATCH=f'"p{version}"',
    )  # fmt: skip
    fired = client.post(
        f"/api/v1/pathways/{scene.pathway.pk}/events/", {"event": "stop"}, format="json"
    )
    consent = client.post(
        f"/api/v1/patients/{scene.patient.pk}/consents/",
        {"scope": "care_team_sharing", "given": False},
        format="json",
    )

    assert patched.status_code == 404
    assert fired.status_code in (403, 409)
    assert consent.status_code == 404
    assert Patient.objects.get(pk=scene.patient.pk).version == version


def test_the_grant_expires(scene, emergency_doctor):
    break_glass(emergency_doctor, scene.patient)

    with time_machine.travel(timezone.now() + dt.timedelta(hours=4, seconds=1), tick=False):
        response = client_for(emergency_doctor).get(f"/api/v1/patients/{scene.patient.pk}/")
        listed = client_for(scene.coordinator.user).get(
            f"/api/v1/patients/{scene.patient.pk}/break-glass/"
        )

    assert response.status_code == 404
    assert [g["active"] for g in listed.json()["results"]] == [False]


def test_the_coordinator_sees_who_broke_the_glass_when_why_and_until_when(scene, emergency_doctor):
    created = break_glass(emergency_doctor, scene.patient).json()

    response = client_for(scene.coordinator.user).get(
        f"/api/v1/patients/{scene.patient.pk}/break-glass/"
    )

    assert response.status_code == 200
    [row] = response.json()["results"]
    grant = BreakGlassGrant.objects.get()
    assert row == {
        "id": grant.pk,
        "user": emergency_doctor.pk,
        "user_name": emergency_doctor.get_full_name(),
        "reason": "unconscious in A&E",
        "started_at": created["started_at"],
        "expires_at": created["expires_at"],
        "active": True,
    }
    assert grant.expires_at - grant.started_at == dt.timedelta(hours=4)
    event = AuditEvent.objects.filter(resource_type="BreakGlassGrant").get()
    assert (event.actor_id, event.action) == (scene.coordinator.user.pk, "search")


def test_breaking_the_glass_needs_a_reason(scene, emergency_doctor):
    response = break_glass(emergency_doctor, scene.patient, reason="  ")
    missing = client_for(emergency_doctor).post(
        f"/api/v1/patients/{scene.patient.pk}/break-glass/", {}, format="json"
    )

    assert response.status_code == 400
    assert missing.status_code == 400
    assert response.json()["errors"] == [
        {"field": "reason", "message": "required to break the glass"}
    ]
    assert BreakGlassGrant.objects.count() == 0
    assert AuditEvent.objects.filter(action="break_glass").count() == 0


def test_without_the_permission_breaking_the_glass_is_a_404(scene):
    response = break_glass(scene.outsider.user, scene.patient)

    assert response.status_code == 404
    assert BreakGlassGrant.objects.count() == 0
    refusal = AuditEvent.objects.filter(actor=scene.outsider.user).get()
    assert refusal.outcome == "denied"


def test_a_care_team_member_need_not_break_the_glass(scene):
    response = break_glass(scene.nurse.user, scene.patient)

    assert response.status_code == 409
    assert BreakGlassGrant.objects.count() == 0
