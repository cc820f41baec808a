"""The INS leaves Parcours only for a qualified identity (the national INS referential): every
outlet, for every identity status.

- API (list, detail, the response to a create or a change): `ins_nir` and `ins_oid` are the
  INS when `identity_status` is `qualified`, null otherwise, even when an INS is stored;
  `identity_status` is always sent. What was written is stored whatever the status.
- Webhooks and the outbox events behind them carry no identity at all (ids only): a receiver
  reads the patient through the API, where the rule above applies.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from rest_framework.test import APIClient

from api.services.platforms import PlatformClient
from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from coordination.services.observations import observations_ingest
from coordination.tasks import webhooks_send
from directory.models import Organization
from directory.services import care_team_member_add, consent_set, organization_create
from live.models import OutboxEvent, WebhookDelivery
from live.services.outbox import outbox_relay_run_once
from live.services.webhooks import webhook_subscription_create
from patients.identifiers import InsOid
from patients.models import Patient
from patients.services import patient_update
from tests.api.test_platform_oauth import ALL_READ, make_platform, obtain_token
from tests.api.test_schemathesis import api_schema, authorization
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from tests.coordination.test_webhooks import Receiver
from tests.patients.factories import synthetic_nir

__all__ = ["api_schema", "authorization"]  # fixtures

STATUSES = ["provisional", "recovered", "validated", "qualified"]
OID = InsOid.TEST_NIR.value
# The traits synthetic_nir(n, sex="2") encodes: a woman born in January 1980.
BORN = dt.date(1980, 1, 15)


def give_ins(patient: Patient, status: str, n: int = 1) -> str:
    """Store an INS for `patient` with `status`, through the service; return the number."""
    nir = synthetic_nir(n, sex="2")
    patient_update(
        patient=patient,
        expected_version=Patient.objects.get(pk=patient.pk).version,
        changes={
            "birth_date": BORN,
            "sex": "female",
            "ins_nir": nir,
            "ins_oid": OID,
            "identity_status": status,
        },
        actor=None,
        entry_point="system",
    )
    return nir


def sent_ins(body: dict[str, Any]) -> tuple[str | None, str | None, str]:
    return body["ins_nir"], body["ins_oid"], body["identity_status"]


def expected(status: str, nir: str) -> tuple[str | None, str | None, str]:
    return (nir, OID, status) if status == "qualified" else (None, None, status)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def registrar(db: None) -> Any:
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_patient"))
    return practitioner.user


# API: reads.


@pytest.mark.parametrize("status", STATUSES)
def test_the_detail_sends_the_ins_only_for_a_qualified_identity(scene: Scene, status: str):
    nir = give_ins(scene.patient, status)

    response = client_for(scene.gp.user).get(f"/api/v1/patients/{scene.patient.pk}/")

    assert response.status_code == 200
    assert sent_ins(response.json()) == expected(status, nir)


@pytest.mark.parametrize("status", STATUSES)
def test_the_list_sends_the_ins_only_for_a_qualified_identity(scene: Scene, status: str):
    nir = give_ins(scene.patient, status)

    response = client_for(scene.gp.user).get("/api/v1/patients/")

    [row] = response.json()["results"]
    assert sent_ins(row) == expected(status, nir)


def test_a_patient_without_ins_is_sent_with_null_ins_and_its_status(scene: Scene):
    response = client_for(scene.gp.user).get(f"/api/v1/patients/{scene.patient.pk}/")

    assert sent_ins(response.json()) == (None, None, "provisional")


def test_the_list_holds_each_patient_to_its_own_status(scene: Scene):
    """Several patients on one page: the rule is per row, not per page."""
    patients = {"qualified": scene.patient}
    for status in ["recovered", "validated", "provisional"]:
        patients[status] = make_patient()
        care_team_member_add(patient=patients[status], role="gp", practitioner=scene.gp, actor=None)
    nirs = {
        patient.pk: (give_ins(patient, status, n=n), status)
        for n, (status, patient) in enumerate(patients.items(), start=1)
    }

    rows = client_for(scene.gp.user).get("/api/v1/patients/").json()["results"]

    assert {row["id"]: sent_ins(row) for row in rows} == {
        pk: expected(status, nir) for pk, (nir, status) in nirs.items()
    }


# API: the response to a write; what was written is stored all the same.


@pytest.mark.parametrize("status", STATUSES)
def test_a_create_stores_the_ins_and_echoes_it_only_when_qualified(registrar: Any, status: str):
    nir = synthetic_nir(7, sex="2")
    body = {
        "family_name": "Synthetic",
        "given_names": "Recovered",
        "birth_date": BORN.isoformat(),
        "sex": "female",
        "ins_nir": nir,
        "ins_oid": OID,
        "identity_status": status,
    }

    response = client_for(registrar).post("/api/v1/patients/", body, format="json")

    assert response.status_code == 201, response.content
    assert sent_ins(response.json()) == expected(status, nir)
    stored = Patient.objects.get(pk=response.json()["id"])
    assert (stored.ins_nir, stored.ins_oid, stored.identity_status) == (nir, OID, status)


@pytest.mark.parametrize("status", STATUSES)
def test_a_change_stores_the_ins_and_echoes_it_only_when_qualified(scene: Scene, status: str):
    nir = synthetic_nir(8, sex="2")
    changes = {
        "birth_date": BORN.isoformat(),
        "ins_nir": nir,
        "ins_oid": OID,
        "identity_status": status,
    }

    response = client_for(scene.gp.user).patch(
        f"/api/v1/patients/{scene.patient.pk}/", changes, format="json", HTTP_IF_MATCH='"p1"'
    )

    assert response.status_code == 200, response.content
    assert sent_ins(response.json()) == expected(status, nir)
    stored = Patient.objects.get(pk=scene.patient.pk)
    assert (stored.ins_nir, stored.ins_oid, stored.identity_status) == (nir, OID, status)


def test_an_identity_no_longer_qualified_stops_sending_its_ins(scene: Scene):
    nir = give_ins(scene.patient, "qualified")
    api = client_for(scene.gp.user)
    before = api.get(f"/api/v1/patients/{scene.patient.pk}/")

    changed = api.patch(
        f"/api/v1/patients/{scene.patient.pk}/",
        {"identity_status": "recovered"},
        format="json",
        HTTP_IF_MATCH=before["ETag"],
    )
    after = api.get(f"/api/v1/patients/{scene.patient.pk}/")

    assert sent_ins(before.json()) == (nir, OID, "qualified")
    assert sent_ins(changed.json()) == (None, None, "recovered")
    assert sent_ins(after.json()) == (None, None, "recovered")


# API: a platform, through the real token endpoint.


@pytest.fixture
def platform(scene: Scene) -> PlatformClient:
    organization = organization_create(
        name="Synthetic regional platform", kind=Organization.Kind.PLATFORM, actor=None
    )
    client = make_platform(organization, [*ALL_READ, "patients:write"])
    care_team_member_add(
        patient=scene.patient, role="platform", practitioner=client.practitioner, actor=None
    )
    return client


@pytest.mark.parametrize("status", STATUSES)
def test_a_platform_with_a_client_credentials_token_gets_the_ins_only_when_qualified(
    scene: Scene, platform: PlatformClient, status: str
):
    nir = give_ins(scene.patient, status)
    api = obtain_token(platform)

    listed = api.get("/api/v1/patients/")
    read = api.get(f"/api/v1/patients/{scene.patient.pk}/")

    assert (listed.status_code, read.status_code) == (200, 200)
    assert [sent_ins(row) for row in listed.json()["results"]] == [expected(status, nir)]
    assert sent_ins(read.json()) == expected(status, nir)
    assert (nir in listed.content.decode(), nir in read.content.decode()) == (
        (status == "qualified",) * 2
    )


def test_a_platform_sending_a_recovered_ins_has_it_stored_not_echoed(
    scene: Scene, platform: PlatformClient
):
    api = obtain_token(platform)
    nir = synthetic_nir(9, sex="2")
    read = api.get(f"/api/v1/patients/{scene.patient.pk}/")

    response = api.patch(
        f"/api/v1/patients/{scene.patient.pk}/",
        {"birth_date": BORN.isoformat(), "ins_nir": nir, "ins_oid": OID,
         "identity_status": "recovered"},
        format="json",
        HTTP_IF_MATCH=read["ETag"],
    )  # fmt: skip

    assert response.status_code == 200, response.content
    assert nir not in response.content.decode()
    assert sent_ins(response.json()) == (None, None, "recovered")
    assert Patient.objects.get(pk=scene.patient.pk).ins_nir == nir


# The schema says so.


def test_the_schema_documents_null_ins_for_an_identity_not_qualified(scene: Scene):
    schema = client_for(scene.gp.user).get("/api/schema/?format=json").json()

    patient = schema["components"]["schemas"]["Patient"]["properties"]
    assert patient["ins_nir"]["nullable"] is True
    assert "qualified" in patient["ins_nir"]["description"]
    assert "identity_status" in schema["components"]["schemas"]["Patient"]["required"]


@pytest.mark.parametrize("status", ["recovered", "qualified"])
def test_a_patient_with_an_ins_conforms_to_the_patient_schema(
    api_schema: Any, scene: Scene, authorization: str, status: str
):
    nir = give_ins(scene.patient, status)
    operation = api_schema["/api/v1/patients/{id}/"]["GET"]

    response = operation.Case(path_parameters={"id": scene.patient.pk}).call(
        headers={"Authorization": authorization}
    )

    assert (response.status_code, sent_ins(response.json())) == (200, expected(status, nir))
    assert operation.is_valid_response(response)


# Webhooks and outbox events: never any identity, whatever the status.


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _events_about_the_patient(scene: Scene) -> None:
    """A task change, a consent, a care-team change and observations: each writes an event."""
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    with transaction.atomic():
        task_act(
            task_id=visit.pk,
            user=scene.nurse.user,
            data=TaskActionInput(action="start", expected_version=None, note="", output={}),
            entry_point="system",
        )
    consent_set(
        patient=scene.patient, scope="remote_monitoring", given=True, actor=None,
        entry_point="system",
    )  # fmt: skip
    care_team_member_add(
        patient=scene.patient, role="nurse", practitioner=make_practitioner("nurse"), actor=None
    )
    observations_ingest(
        patient=scene.patient,
        observations={
            "code": "29463-7", "value": Decimal("71.5"), "unit": "kg",
            "effective_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        },
        actor=None,
        source="platform",
    )  # fmt: skip


@pytest.mark.parametrize("status", STATUSES)
def test_webhooks_and_events_carry_no_ins_whatever_the_identity_status(
    scene: Scene, receiver: Receiver, status: str
):
    nir = give_ins(scene.patient, status)
    types = ["task.changed", "consent.changed", "care_team.changed", "observation.received"]
    webhook_subscription_create(owner=scene.gp.user, url=receiver.url, event_types=types)

    _events_about_the_patient(scene)
    outbox_relay_run_once(publish=lambda events: None)
    result = webhooks_send()

    bodies = [json.loads(r.body) for r in receiver.received]
    assert result["succeeded"] == len(bodies) >= len(types)
    assert {body["type"] for body in bodies} == set(types)
    assert {body["patient"] for body in bodies} == {scene.patient.pk}
    delivered = [r.body.decode() for r in receiver.received]
    stored = list(WebhookDelivery.objects.values_list("body", flat=True))
    events = [json.dumps(e) for e in OutboxEvent.objects.values_list("payload", flat=True)]
    for text in [*delivered, *stored, *events]:
        assert nir not in text
        assert OID not in text
        assert "ins_nir" not in text
