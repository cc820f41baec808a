from __future__ import annotations

import json
import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connections
from rest_framework.test import APIClient

from api.models import IdempotencyRecord
from coordination.models import CarePathway, Task, TaskEvent
from coordination.services import care_pathway_cancel, care_pathway_start
from directory.services import care_team_member_add
from patients.models import AuditEvent
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def manager(db):
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    return practitioner.user


def test_uploading_a_broken_definition_answers_400_with_every_problem(manager):
    broken = CARE_TEST.replace("role: nurse,", "role: nurze,").replace("due: P7D}", "due: P7X}")

    response = client_for(manager).post(
        "/api/v1/pathway-definitions/", broken, content_type="application/yaml"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/invalid-definition")
    assert [(e["field"], e["line"]) for e in body["errors"]] == [
        ("states.assessment.on_enter.0.task.role", 10),
        ("states.assessment.on_enter.1.task.due", 11),
        ("states.follow_up.on_enter.0.task.due", 17),
    ]


def test_upload_then_publish_a_definition(manager):
    client = client_for(manager)

    uploaded = client.post("/api/v1/pathway-definitions/", {"source": CARE_TEST}, format="json")
    published = client.post("/api/v1/pathway-definitions/care-test/1/publish/")
    again = client.post("/api/v1/pathway-definitions/", {"source": CARE_TEST}, format="json")

    assert (uploaded.status_code, uploaded.json()["status"]) == (201, "draft")
    assert (published.status_code, published.json()["status"]) == (200, "active")
    assert again.status_code == 200


def test_uploading_needs_the_definition_permission(db):
    nurse = make_practitioner("nurse")

    response = client_for(nurse.user).post(
        "/api/v1/pathway-definitions/", {"source": CARE_TEST}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["type"].endswith("/not-allowed")


def test_anonymous_requests_are_refused_as_problems(db):
    response = APIClient().get("/api/v1/tasks/")

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"


def test_start_a_pathway_and_read_it_with_its_etag(scene: Scene):
    client = client_for(scene.gp.user)
    care_pathway_cancel(pathway=scene.pathway, user=None)  # one care-test at a time

    created = client.post(
        "/api/v1/pathways/", {"patient": scene.patient.pk, "pathway": "care-test"}, format="json"
    )
    read = client.get(f"/api/v1/pathways/{created.json()['id']}/")

    assert created.status_code == 201
    assert (read.json()["state"], read.json()["revision"]) == ("assessment", 1)
    assert read["ETag"] == '"r1"'
    assert AuditEvent.objects.filter(
        action="read", resource_type="CarePathway", resource_id=str(created.json()["id"])
    ).exists()


def test_someone_else_s_pathway_is_not_found(scene: Scene):
    response = client_for(scene.outsider.user).get(f"/api/v1/pathways/{scene.pathway.pk}/")
    missing = client_for(scene.outsider.user).get("/api/v1/pathways/999999/")

    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()


def test_firing_a_refused_event_answers_409_with_the_reason(scene: Scene):
    response = client_for(scene.nurse.user).post(
        f"/api/v1/pathways/{scene.pathway.pk}/events/", {"event": "stop"}, format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "role_not_allowed"
    assert body["detail"] == (
        "role not allowed: 'stop' may be fired by coordinator, gp; your roles: nurse"
    )


def test_firing_with_a_stale_if_match_answers_412_and_changes_nothing(scene: Scene):
    client = client_for(scene.gp.user)

    response = client.post(
        f"/api/v1/pathways/{scene.pathway.pk}/events/",
        {"event": "stop"},
        format="json",
        HTTP_IF_MATCH='"r7"',
    )

    assert response.status_code == 412
    assert client.get(f"/api/v1/pathways/{scene.pathway.pk}/").json()["state"] == "assessment"


def test_available_events_depend_on_the_callers_roles(scene: Scene):
    url = f"/api/v1/pathways/{scene.pathway.pk}/available-events/"

    as_gp = client_for(scene.gp.user).get(url).json()
    as_nurse = client_for(scene.nurse.user).get(url).json()

    assert as_gp == [{"event": "stop", "to": "closed", "guarded": False}]
    assert as_nurse == []


def test_completing_a_task_through_the_api_and_a_stale_retry(scene: Scene):
    client = client_for(scene.nurse.user)
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    done = client.post(
        f"/api/v1/tasks/{visit.pk}/complete/", {"note": "ok"}, format="json", HTTP_IF_MATCH='"v1"'
    )
    stale = client.post(
        f"/api/v1/tasks/{visit.pk}/complete/", {}, format="json", HTTP_IF_MATCH='"v1"'
    )

    assert (done.status_code, done.json()["status"], done["ETag"]) == (200, "completed", '"v3"')
    assert stale.status_code == 412


def test_worklist_mine_lists_the_nurses_tasks(scene: Scene):
    response = client_for(scene.nurse.user).get("/api/v1/tasks/?view=mine")

    assert response.status_code == 200
    assert [t["code"] for t in response.json()["results"]] == ["visit"]


def test_unknown_worklist_view_names_the_field(scene: Scene):
    response = client_for(scene.nurse.user).get("/api/v1/tasks/?view=everything")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "view", "message": "one of all, mine, unclaimed, overdue"}
    ]


def test_openapi_schema_and_docs_are_served(db):
    user = make_practitioner("nurse").user
    client = client_for(user)

    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/tasks/{id}/complete/" in schema.content
    assert docs.status_code == 200


def test_a_refused_read_is_written_to_the_audit_trail_under_its_patient(scene: Scene):
    client_for(scene.outsider.user).get(f"/api/v1/pathways/{scene.pathway.pk}/")

    refused = AuditEvent.objects.filter(actor=scene.outsider.user).get()
    # The pathway exists but is not the outsider's: denied, in its patient's trail.
    assert (refused.action, refused.outcome, refused.resource_id, refused.patient_id) == (
        "read",
        "denied",
        str(scene.pathway.pk),
        scene.patient.pk,
    )


def test_a_read_of_a_missing_pathway_is_recorded_as_not_found_under_no_patient(scene: Scene):
    missing = scene.pathway.pk + 1000

    client_for(scene.outsider.user).get(f"/api/v1/pathways/{missing}/")

    refused = AuditEvent.objects.filter(actor=scene.outsider.user).get()
    assert (refused.outcome, refused.resource_id, refused.patient_id) == (
        "not_found",
        str(missing),
        None,
    )


def test_an_oversized_body_is_refused_with_413_before_anything_reads_it(scene: Scene, settings):
    settings.API_MAX_BODY_BYTES = 1000
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    response = client_for(scene.nurse.user).post(
        f"/api/v1/tasks/{visit.pk}/complete/", {"note": "x" * 2000}, format="json"
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].endswith("the limit is 1000 bytes")
    assert Task.objects.get(pk=visit.pk).status == "ready"


def test_a_retry_with_the_same_idempotency_key_replays_and_creates_nothing(scene: Scene):
    client = client_for(scene.gp.user)
    care_pathway_cancel(pathway=scene.pathway, user=None)  # one care-test at a time
    body = {"patient": scene.patient.pk, "pathway": "care-test"}
    before = CarePathway.objects.count()

    first = client.post("/api/v1/pathways/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = client.post("/api/v1/pathways/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["ETag"] == first["ETag"]
    assert retry["Idempotent-Replayed"] == "true"
    assert CarePathway.objects.count() == before + 1


def test_reusing_an_idempotency_key_for_another_request_is_a_conflict(scene: Scene):
    client = client_for(scene.gp.user)
    care_pathway_cancel(pathway=scene.pathway, user=None)  # one care-test at a time
    client.post(
        "/api/v1/pathways/",
        {"patient": scene.patient.pk, "pathway": "care-test"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )

    other = client.post(
        f"/api/v1/pathways/{scene.pathway.pk}/events/",
        {"event": "stop"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )

    assert other.status_code == 409
    assert "different request" in other.json()["detail"]
    # Its own problem type: a client tells a reused key from a stale version (`conflict`).
    assert other.json()["type"].endswith("/idempotency-conflict")


def test_a_refused_keyed_request_frees_its_key_for_a_corrected_retry(scene: Scene):
    client = client_for(scene.gp.user)
    url = f"/api/v1/pathways/{scene.pathway.pk}/events/"

    refused = client.post(url, {"event": "nope"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    corrected = client.post(url, {"event": "nope"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert (refused.status_code, corrected.status_code) == (409, 409)
    assert "Idempotent-Replayed" not in corrected


def test_two_simultaneous_requests_with_one_key_run_once_and_both_get_its_answer(
    postgres_transactional: None, care_test: None
):
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    visit = Task.objects.get(care_pathway=pathway, code="visit")
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str, bytes]] = []

    def complete() -> None:
        try:
            client = client_for(nurse.user)
            barrier.wait()
            response = client.post(
                f"/api/v1/tasks/{visit.pk}/complete/", {"note": "done"}, format="json",
                HTTP_IDEMPOTENCY_KEY="same-key",
            )  # fmt: skip
            answers.append(
                (response.status_code, response.get("Idempotent-Replayed", ""), response.content)
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted((status, replayed) for status, replayed, _ in answers) == [
        (200, ""), (200, "true"),
    ]  # fmt: skip
    assert json.loads(answers[0][2]) == json.loads(answers[1][2])  # stored as jsonb: same object
    assert TaskEvent.objects.filter(task=visit, to_status="completed").count() == 1
    assert IdempotencyRecord.objects.filter(key="same-key").count() == 1


@pytest.mark.parametrize("path", ["/api/v1/tasks/", "/api/v1/patients/", "/api/v1/pathways/"])
def test_a_list_asked_with_many_long_query_parameters_is_answered_and_recorded(
    scene: Scene, path: str
):
    # The record keeps the list's own parameters only: noise in the query cannot make it
    # too long to be written (the list was answered 400, about the audit record's detail).
    noise = {f"x{n}": "y" * 200 for n in range(80)}

    response = client_for(scene.nurse.user).get(path, noise)

    assert response.status_code == 200
    recorded = AuditEvent.objects.filter(actor=scene.nurse.user, action="search").get()
    assert recorded.patient_id == scene.patient.pk


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/patients/{id}/consents/",
        "/api/v1/patients/{id}/care-team/",
        "/api/v1/pathways/{id}/history/",
        "/api/v1/tasks/{id}/",
    ],
)
def test_a_refused_read_of_an_id_no_key_can_hold_is_a_404_recorded_under_no_patient(
    scene: Scene, path: str
):
    huge = 2**70  # beyond 64 bits: SQLite refuses it in a query

    response = client_for(scene.outsider.user).get(path.format(id=huge))

    assert response.status_code == 404
    refused = AuditEvent.objects.filter(actor=scene.outsider.user).get()
    assert (refused.outcome, refused.patient_id) == ("not_found", None)
