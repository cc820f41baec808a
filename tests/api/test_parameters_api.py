"""REST: a pathway's per-patient parameters (`/api/v1/pathways/<id>/parameters/`), setting
one, and their history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.test import APIClient

from api.services.platforms import platform_client_create
from coordination.models import PathwayParameter
from coordination.services.parameters import parameter_set
from directory.services import care_team_member_add, organization_create
from live.models import OutboxEvent
from patients.models import AuditEvent
from tests.api.test_platform_oauth import obtain_token
from tests.coordination.parameters_pathway import CopdScene, copd_publish, copd_scene

REASON = "COPD: chronic hypoxaemia, usual SpO2 88-90 %"


@pytest.fixture
def copd(db: None) -> CopdScene:
    copd_publish()
    return copd_scene()


def _as(user: AbstractBaseUser) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _url(scene: CopdScene, tail: str = "") -> str:
    return f"/api/v1/pathways/{scene.pathway.pk}/parameters/{tail}"


def _last_audit_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _records(after: int) -> list[tuple[str, str, int | None, str, str]]:
    return [
        (e.action, e.resource_type, e.patient_id, e.outcome, e.entry_point)
        for e in AuditEvent.objects.filter(pk__gt=after).order_by("pk")
    ]


def test_a_member_of_the_care_team_reads_each_declared_parameter_and_its_value(copd):
    parameter_set(
        user=copd.pulmonologist.user, care_pathway_id=copd.pathway.pk, name="spo2_floor",
        value=88, reason=REASON,
    )  # fmt: skip
    before = _last_audit_id()

    response = _as(copd.nurse.user).get(_url(copd))

    assert response.status_code == 200
    body = response.json()
    assert body["pathway"] == copd.pathway.pk
    spo2, heart_rate = body["parameters"]
    assert {k: spo2[k] for k in spo2 if k != "set_at"} == {
        "name": "spo2_floor",
        "title": {"en": "SpO2 floor", "fr": "Seuil de SpO2"},
        "description": None,
        "unit": "%",
        "default": 90.0,
        "minimum": 80.0,
        "maximum": 95.0,
        "roles": ["gp", "pulmonologist"],
        "value": 88.0,
        "is_default": False,
        "set_by": copd.pulmonologist.user.get_full_name(),
        "reason": REASON,
        "may_set": False,  # a nurse: not one of its roles
    }
    assert spo2["set_at"] is not None
    assert (heart_rate["name"], heart_rate["value"], heart_rate["is_default"]) == (
        "heart_rate_ceiling", 120.0, True,
    )  # fmt: skip
    assert (heart_rate["set_by"], heart_rate["set_at"], heart_rate["may_set"]) == ("", None, True)
    assert _records(before) == [("read", "PathwayParameter", copd.patient.pk, "success", "rest")]


def test_a_pulmonologist_sets_the_spo2_floor_with_a_reason(copd):
    before = _last_audit_id()

    response = _as(copd.pulmonologist.user).post(
        _url(copd), {"name": "spo2_floor", "value": "88", "reason": REASON}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["value"], body["is_default"], body["reason"]) == (
        "spo2_floor", 88.0, False, REASON,
    )  # fmt: skip
    [row] = PathwayParameter.objects.all()
    assert (row.value, row.previous_value) == (Decimal(88), Decimal(90))
    assert row.set_by_id == copd.pulmonologist.user.pk
    assert _records(before) == [("update", "PathwayParameter", copd.patient.pk, "success", "rest")]
    assert OutboxEvent.objects.filter(type="parameter.changed").count() == 1


def _refused_post(copd: CopdScene, user: AbstractBaseUser, body: dict[str, object]):
    response = _as(user).post(_url(copd), body, format="json")
    assert PathwayParameter.objects.count() == 0
    assert not OutboxEvent.objects.filter(type="parameter.changed").exists()
    return response


def test_an_unknown_name_answers_a_problem_naming_the_declared_ones(copd):
    response = _refused_post(
        copd, copd.pulmonologist.user, {"name": "spo2_flor", "value": 88, "reason": REASON}
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "name",
            "message": "unknown parameter 'spo2_flor' (declared by this pathway: "
            "heart_rate_ceiling, spo2_floor)",
        }
    ]


def test_a_malformed_name_is_an_unknown_one_too(copd):
    response = _refused_post(
        copd, copd.pulmonologist.user, {"name": "SpO2 floor", "value": 88, "reason": REASON}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("unknown parameter 'SpO2 floor'")


def test_a_value_outside_the_bounds_answers_a_problem_naming_them_and_the_unit(copd):
    response = _refused_post(
        copd, copd.pulmonologist.user, {"name": "spo2_floor", "value": 75, "reason": REASON}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "value", "message": "75 is outside the bounds of spo2_floor: [80, 95] %"}
    ]


def test_a_missing_reason_answers_a_problem_naming_the_field(copd):
    response = _refused_post(copd, copd.pulmonologist.user, {"name": "spo2_floor", "value": 88})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["reason"]


def test_a_member_without_the_parameters_role_is_refused_and_the_refusal_audited(copd):
    before = _last_audit_id()

    response = _refused_post(
        copd, copd.nurse.user, {"name": "spo2_floor", "value": 88, "reason": REASON}
    )

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "only a member of the patient's care team as gp, pulmonologist may set spo2_floor"
    )
    assert ("update", "CarePathwayParameters", copd.patient.pk, "denied", "rest") in _records(
        before
    )


@pytest.mark.parametrize("method", ["get", "post"])
def test_someone_who_may_not_see_the_patient_gets_the_404_of_a_missing_pathway(copd, method):
    body = {"name": "spo2_floor", "value": 88, "reason": REASON}
    client = _as(copd.outsider.user)
    before = _last_audit_id()

    refused = getattr(client, method)(_url(copd), body, format="json")
    missing = getattr(client, method)(f"/api/v1/pathways/{10**9}/parameters/", body, format="json")

    assert refused.status_code == missing.status_code == 404
    assert refused.content == missing.content
    assert PathwayParameter.objects.count() == 0
    assert _records(before)[0][2:4] == (copd.patient.pk, "denied")


def test_history_lists_every_setting_newest_first_and_is_audited(copd):
    for value, reason in ((88, "baseline"), (87, "still well at 87 %")):
        parameter_set(
            user=copd.gp.user, care_pathway_id=copd.pathway.pk, name="spo2_floor",
            value=value, reason=reason,
        )  # fmt: skip
    parameter_set(
        user=copd.nurse.user, care_pathway_id=copd.pathway.pk, name="heart_rate_ceiling",
        value=130, reason="on beta-agonists",
    )  # fmt: skip
    before = _last_audit_id()

    everything = _as(copd.nurse.user).get(_url(copd, "history/"))
    one = _as(copd.nurse.user).get(_url(copd, "history/"), {"name": "spo2_floor"})

    assert everything.status_code == one.status_code == 200
    assert set(everything.json()) == {"next", "previous", "results"}
    assert [
        (r["name"], r["previous_value"], r["value"], r["set_by"], r["set_by_roles"], r["reason"])
        for r in everything.json()["results"]
    ] == [
        ("heart_rate_ceiling", 120.0, 130.0, copd.nurse.user.pk, ["nurse"], "on beta-agonists"),
        ("spo2_floor", 88.0, 87.0, copd.gp.user.pk, ["gp"], "still well at 87 %"),
        ("spo2_floor", 90.0, 88.0, copd.gp.user.pk, ["gp"], "baseline"),
    ]
    assert [r["value"] for r in one.json()["results"]] == [87.0, 88.0]
    assert (
        _records(before)
        == [("read", "PathwayParameterHistory", copd.patient.pk, "success", "rest")] * 2
    )


def test_history_is_not_found_for_a_stranger(copd):
    refused = _as(copd.outsider.user).get(_url(copd, "history/"))

    assert refused.status_code == 404


def test_a_platform_token_reads_parameters_with_the_pathways_read_scope_only(copd):
    organization = organization_create(name="Synthetic platform", kind="platform", actor=None)
    platform = platform_client_create(
        slug="copd", name="Synthetic platform", organization=organization,
        scopes=["pathways:read", "pathways:write", "tasks:read"], actor=None,
    )  # fmt: skip
    care_team_member_add(
        patient=copd.patient, role="platform", practitioner=platform.practitioner, actor=None
    )
    reader = obtain_token(platform, "pathways:read")
    writer = obtain_token(platform, "pathways:write")
    other = obtain_token(platform, "tasks:read")
    body = {"name": "heart_rate_ceiling", "value": 130, "reason": "from the platform"}

    read = reader.get(_url(copd))
    write_without_scope = reader.post(_url(copd), body, format="json")
    read_without_scope = other.get(_url(copd))
    write = writer.post(_url(copd), body, format="json")

    assert read.status_code == 200
    assert [p["may_set"] for p in read.json()["parameters"]] == [False, False]
    assert write_without_scope.status_code == read_without_scope.status_code == 403
    assert write_without_scope.json()["required_scopes"] == ["pathways:write"]
    assert read_without_scope.json()["required_scopes"] == ["pathways:read"]
    # A platform is no professional of the care team: it does not set parameters.
    assert write.status_code == 403
    assert write.json()["type"].endswith("/not-allowed")
    assert PathwayParameter.objects.count() == 0


def test_the_schema_documents_the_parameter_routes(copd):
    schema = _as(copd.nurse.user).get("/api/schema/", {"format": "json"})

    paths = schema.json()["paths"]
    assert set(paths["/api/v1/pathways/{id}/parameters/"]) >= {"get", "post"}
    assert "get" in paths["/api/v1/pathways/{id}/parameters/history/"]
