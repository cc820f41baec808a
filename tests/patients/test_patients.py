from __future__ import annotations

import datetime as dt

import pytest

from patients.errors import Conflict, InvalidIdentifier, InvalidPatient
from patients.identifiers import InsOid, nir_key
from patients.models import AuditEvent, Patient
from patients.services import patient_create, patient_update
from tests.patients.conftest import T0
from tests.patients.factories import PatientFactory, UserFactory, synthetic_nir

WEB = AuditEvent.EntryPoint.WEB


def create(actor, **overrides):
    values = {
        "family_name": "Patient 1",
        "given_names": "Synthetic",
        "birth_date": dt.date(1980, 1, 15),
        "sex": "female",
        "ins_nir": synthetic_nir(1, sex="2"),
        "ins_oid": InsOid.TEST_NIR.value,
        "actor": actor,
        "entry_point": WEB,
        "now": T0,
    }
    return patient_create(**{**values, **overrides})


@pytest.mark.django_db
def test_create_stores_the_patient_at_version_1_and_audits_it(nurse):
    patient = create(nurse, family_name="  Patient   1 ", address_lines=["1 rue de Test", " "])

    stored = Patient.objects.get()
    assert (stored.pk, stored.family_name, stored.version) == (patient.pk, "Patient 1", 1)
    assert stored.address_lines == ["1 rue de Test"]
    assert (stored.created_at, stored.updated_at) == (T0, T0)
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.resource_id, event.patient_id) == (
        "create",
        "Patient",
        str(patient.pk),
        patient.pk,
    )
    assert (event.actor_id, event.actor_label, event.entry_point, event.outcome) == (
        nurse.pk,
        "synthetic-nurse",
        "web",
        "success",
    )


@pytest.mark.django_db
def test_create_with_a_bad_nir_key_names_the_field_and_writes_nothing(nurse):
    number = "2800175000001"
    expected = nir_key(number)
    wrong = "01" if expected != "01" else "02"

    with pytest.raises(InvalidIdentifier) as caught:
        create(nurse, ins_nir=number + wrong)

    assert caught.value.field == "ins_nir"
    assert caught.value.expected_key == expected
    assert Patient.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ins_oid": ""}, "ins_oid: required when ins_nir is given"),
        (
            {"ins_nir": "", "ins_oid": InsOid.TEST_NIR.value},
            "ins_nir: required when ins_oid is given",
        ),
        ({"birth_place_code": "7505"}, "birth_place_code: '7505' is not an INSEE commune code"),
    ],
)
@pytest.mark.django_db
def test_create_refuses_incomplete_or_malformed_identifiers(nurse, overrides, message):
    with pytest.raises(InvalidIdentifier, match=f"^{message}"):
        create(nurse, **overrides)

    assert Patient.objects.count() == 0


@pytest.mark.django_db
def test_create_reports_every_invalid_field_at_once(nurse):
    with pytest.raises(InvalidPatient) as caught:
        create(
            nurse,
            family_name=" ",
            sex="f",
            birth_date=dt.date(2027, 1, 1),
            email="not-an-email",
            phone="call me",
            identity_status="certain",
        )

    assert [str(p) for p in caught.value.problems] == [
        "family_name: required",
        "phone: digits, spaces, + ( ) . - only",
        "email: not an email address",
        "birth_date: in the future",
        "sex: 'f' is not one of male, female, other, unknown",
        "identity_status: 'certain' is not one of provisional, recovered, validated, qualified",
    ]
    assert Patient.objects.count() == 0


@pytest.mark.django_db
def test_a_qualified_identity_needs_an_ins(nurse):
    with pytest.raises(InvalidPatient) as caught:
        create(nurse, ins_nir="", ins_oid="", identity_status="qualified")

    assert [str(p) for p in caught.value.problems] == [
        "identity_status: a qualified identity needs its INS (ins_nir, ins_oid)"
    ]


@pytest.mark.django_db
def test_the_same_ins_cannot_belong_to_two_patients(nurse):
    create(nurse)

    with pytest.raises(Conflict, match="another patient already has this INS"):
        create(nurse, family_name="Patient 2")

    assert Patient.objects.count() == 1
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_same_number_under_another_oid_is_another_ins(nurse):
    create(nurse)

    other = create(nurse, ins_oid=InsOid.TEST_NIA.value)

    assert other.ins_oid == "1.2.250.1.213.1.4.11"
    assert Patient.objects.count() == 2


@pytest.mark.django_db
def test_a_portal_account_belongs_to_one_patient(nurse):
    account = UserFactory.create(username="synthetic-patient-1")
    create(nurse, user=account)

    with pytest.raises(Conflict, match="portal account already belongs to another patient"):
        create(nurse, ins_nir="", ins_oid="", user=account)


@pytest.mark.django_db
def test_update_changes_fields_bumps_version_and_audits_the_field_names(nurse):
    patient = PatientFactory.create(created_at=T0)

    updated = patient_update(
        patient=patient,
        expected_version=1,
        changes={"phone": "+33 6 00 00 00 00", "city": "Testville"},
        actor=nurse,
        entry_point=WEB,
        now=T0 + dt.timedelta(hours=1),
    )

    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.phone, stored.city, stored.version) == ("+33 6 00 00 00 00", "Testville", 2)
    assert stored.updated_at == T0 + dt.timedelta(hours=1)
    assert updated.version == 2
    event = AuditEvent.objects.get()
    assert (event.action, event.patient_id) == ("update", patient.pk)
    assert event.detail == {"fields": ["city", "phone"], "version": 2}


@pytest.mark.django_db
def test_update_with_a_stale_version_is_a_conflict_and_writes_nothing(nurse):
    patient = PatientFactory.create(version=3)

    with pytest.raises(Conflict) as caught:
        patient_update(
            patient=patient,
            expected_version=2,
            changes={"city": "Testville"},
            actor=nurse,
            entry_point=WEB,
        )

    assert (caught.value.expected, caught.value.actual) == (2, 3)
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.city, stored.version) == ("", 3)
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_two_updates_from_the_same_version_give_one_success_and_one_conflict(nurse):
    patient = PatientFactory.create()
    patient_update(
        patient=patient, expected_version=1, changes={"city": "A"}, actor=nurse, entry_point=WEB
    )

    with pytest.raises(Conflict):
        patient_update(
            patient=patient, expected_version=1, changes={"city": "B"}, actor=nurse, entry_point=WEB
        )

    assert Patient.objects.get(pk=patient.pk).city == "A"


@pytest.mark.django_db
def test_an_update_that_changes_nothing_writes_nothing(nurse):
    patient = PatientFactory.create(city="Testville")

    result = patient_update(
        patient=patient,
        expected_version=1,
        changes={"city": " Testville "},
        actor=nurse,
        entry_point=WEB,
    )

    assert result.version == 1
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_unknown_fields_are_refused(nurse):
    patient = PatientFactory.create()

    with pytest.raises(InvalidPatient, match=r"^version: unknown field$"):
        patient_update(
            patient=patient,
            expected_version=1,
            changes={"version": 9},  # type: ignore[typeddict-unknown-key]
            actor=nurse,
            entry_point=WEB,
        )


@pytest.mark.django_db
def test_changing_a_strict_trait_of_a_qualified_identity_makes_it_provisional(nurse):
    patient = PatientFactory.create(identity_status="qualified")

    updated = patient_update(
        patient=patient,
        expected_version=1,
        changes={"given_names": "Synthetic Other"},
        actor=nurse,
        entry_point=WEB,
    )

    assert updated.identity_status == "provisional"
    assert AuditEvent.objects.get().detail["fields"] == ["given_names", "identity_status"]


@pytest.mark.django_db
def test_a_strict_trait_change_that_restates_the_status_keeps_it(nurse):
    patient = PatientFactory.create(identity_status="qualified")

    updated = patient_update(
        patient=patient,
        expected_version=1,
        changes={"given_names": "Synthetic Other", "identity_status": "qualified"},
        actor=nurse,
        entry_point=WEB,
    )

    assert updated.identity_status == "qualified"


@pytest.mark.django_db
def test_removing_the_ins_of_a_qualified_identity_makes_it_provisional(nurse):
    patient = PatientFactory.create(identity_status="qualified")

    updated = patient_update(
        patient=patient,
        expected_version=1,
        changes={"ins_nir": "", "ins_oid": ""},
        actor=nurse,
        entry_point=WEB,
    )

    assert (updated.ins_nir, updated.ins_oid, updated.identity_status) == ("", "", "provisional")


@pytest.mark.django_db
def test_a_contact_change_keeps_a_qualified_identity(nurse):
    patient = PatientFactory.create(identity_status="qualified")

    updated = patient_update(
        patient=patient,
        expected_version=1,
        changes={"email": "synthetic.patient@example.org"},
        actor=nurse,
        entry_point=WEB,
    )

    assert updated.identity_status == "qualified"


@pytest.mark.django_db
def test_update_to_an_ins_held_by_another_patient_is_a_conflict(nurse):
    first = PatientFactory.create()
    second = PatientFactory.create()

    with pytest.raises(Conflict, match="another patient already has this INS"):
        patient_update(
            patient=second,
            expected_version=1,
            changes={"ins_nir": first.ins_nir},
            actor=nurse,
            entry_point=WEB,
        )

    assert Patient.objects.get(pk=second.pk).version == 1


@pytest.mark.django_db
def test_linking_and_unlinking_the_portal_account(nurse):
    patient = PatientFactory.create()
    account = UserFactory.create(username="synthetic-patient-1")

    linked = patient_update(
        patient=patient, expected_version=1, changes={"user": account}, actor=nurse, entry_point=WEB
    )
    unlinked = patient_update(
        patient=patient, expected_version=2, changes={"user": None}, actor=nurse, entry_point=WEB
    )

    assert (linked.user_id, linked.version) == (account.pk, 2)
    assert (unlinked.user_id, unlinked.version) == (None, 3)
    assert [e.detail["fields"] for e in AuditEvent.objects.order_by("id")] == [["user"], ["user"]]
