from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.utils import timezone

from patients.errors import InvalidInput, InvalidPermission, NotAllowed, PatientNotFound
from patients.models import AuditEvent, Patient, PatientUserObjectPermission
from patients.selectors import (
    access_patient,
    patient_visible,
    patient_visible_condition,
    visible_patient_ids,
    visible_patients,
)
from patients.services import (
    patient_access_grant,
    patient_access_revoke,
    patient_break_glass,
)
from tests.patients.factories import GroupFactory, PatientFactory, UserFactory

REST = AuditEvent.EntryPoint.REST


@pytest.fixture
def world(db):
    """One patient, and everyone who might look at it."""
    patient = PatientFactory.create()
    other_patient = PatientFactory.create(
        user=UserFactory.create(username="synthetic-other-patient")
    )
    patient.user = UserFactory.create(username="synthetic-patient")
    patient.save(update_fields=["user"])
    member = UserFactory.create(username="synthetic-member")
    team = GroupFactory.create()
    member.groups.add(team)
    owner = UserFactory.create(username="synthetic-owner")
    coordinator = UserFactory.create(username="synthetic-coordinator")
    patient_access_grant(patient=patient, perms=["view_patient"], user=owner, actor=coordinator)
    patient_access_grant(patient=patient, perms=["view_patient"], group=team, actor=coordinator)
    return {
        "patient": patient,
        "anonymous": AnonymousUser(),
        "unrelated practitioner": UserFactory.create(username="synthetic-unrelated"),
        "team member": member,
        "owner": owner,
        "the patient": patient.user,
        "another patient": other_patient.user,
        "superuser": UserFactory.create(
            username="synthetic-admin", is_superuser=True, is_staff=True
        ),
        "inactive owner": _inactive_owner(patient, coordinator),
    }


def _inactive_owner(patient, coordinator):
    user = UserFactory.create(username="synthetic-inactive", is_active=False)
    patient_access_grant(patient=patient, perms=["view_patient"], user=user, actor=coordinator)
    return user


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("anonymous", False),
        ("unrelated practitioner", False),
        ("team member", True),
        ("owner", True),
        ("the patient", True),
        ("another patient", False),
        ("superuser", False),
        ("inactive owner", False),
    ],
)
def test_who_sees_the_patient(world, who, sees):
    patient = world["patient"]

    visible = list(visible_patients(world[who]))

    assert (patient in visible) is sees
    if sees:
        assert access_patient(user=world[who], patient_id=patient.pk) == patient
    else:
        with pytest.raises(PatientNotFound, match=f"^no patient with id {patient.pk}$"):
            access_patient(user=world[who], patient_id=patient.pk)


def test_an_unrelated_user_sees_nothing(world):
    assert list(visible_patients(world["unrelated practitioner"])) == []


def test_a_patient_account_sees_only_itself(world):
    assert list(visible_patients(world["the patient"])) == [world["patient"]]
    assert list(visible_patients(world["the patient"], "change_patient")) == []


def test_global_permissions_do_not_open_records(world):
    user = world["unrelated practitioner"]
    user.user_permissions.add(Permission.objects.get(codename="view_patient"))

    assert list(visible_patients(user)) == []


def test_missing_and_forbidden_read_the_same_but_audit_differently(world):
    user = world["unrelated practitioner"]

    with pytest.raises(PatientNotFound) as forbidden:
        access_patient(user=user, patient_id=world["patient"].pk)
    with pytest.raises(PatientNotFound) as missing:
        access_patient(user=user, patient_id=987654)

    assert str(forbidden.value) == f"no patient with id {world['patient'].pk}"
    assert str(missing.value) == "no patient with id 987654"
    assert type(forbidden.value) is type(missing.value)
    assert (forbidden.value.outcome, missing.value.outcome) == ("denied", "not_found")


def test_revocation_removes_access_at_once(world):
    patient, owner = world["patient"], world["owner"]

    revoked = patient_access_revoke(
        patient=patient, perms=["view_patient"], user=owner, actor=world["superuser"]
    )

    assert revoked == ["view_patient"]
    assert list(visible_patients(owner)) == []
    with pytest.raises(PatientNotFound):
        access_patient(user=owner, patient_id=patient.pk)


def test_change_permission_is_separate_from_view(world):
    patient, owner = world["patient"], world["owner"]

    with pytest.raises(PatientNotFound):
        access_patient(user=owner, patient_id=patient.pk, perm="change_patient")
    patient_access_grant(patient=patient, perms=["patients.change_patient"], user=owner, actor=None)

    assert access_patient(user=owner, patient_id=patient.pk, perm="change_patient") == patient


@pytest.mark.django_db
def test_grants_and_revocations_are_audited_once_and_idempotent():
    patient, user, actor = (
        PatientFactory.create(),
        UserFactory.create(),
        UserFactory.create(username="synthetic-lead"),
    )

    first = patient_access_grant(
        patient=patient, perms=["view_patient", "change_patient"], user=user, actor=actor
    )
    again = patient_access_grant(patient=patient, perms=["view_patient"], user=user, actor=actor)
    revoked = patient_access_revoke(
        patient=patient, perms=["change_patient"], user=user, actor=actor, entry_point=REST
    )
    revoked_again = patient_access_revoke(
        patient=patient, perms=["change_patient"], user=user, actor=actor
    )

    assert (first, again, revoked, revoked_again) == (
        ["change_patient", "view_patient"],
        [],
        ["change_patient"],
        [],
    )
    assert list(
        PatientUserObjectPermission.objects.values_list("permission__codename", flat=True)
    ) == ["view_patient"]
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.entry_point, e.detail) for e in events] == [
        ("grant", "system", {"user_id": user.pk, "perms": ["change_patient", "view_patient"]}),
        ("revoke", "rest", {"user_id": user.pk, "perms": ["change_patient"]}),
    ]
    assert {e.patient_id for e in events} == {patient.pk}


@pytest.mark.django_db
def test_only_patient_permissions_can_be_granted():
    patient, user = PatientFactory.create(), UserFactory.create()

    with pytest.raises(InvalidPermission) as caught:
        patient_access_grant(
            patient=patient, perms=["delete_patient", "view_patient"], user=user, actor=None
        )
    with pytest.raises(InvalidPermission, match="give exactly one of user and group"):
        patient_access_grant(patient=patient, perms=["view_patient"], actor=None)

    assert [str(p) for p in caught.value.problems] == [
        "perms: 'delete_patient' cannot be granted on a patient; grantable: change_patient, "
        "view_patient"
    ]
    assert PatientUserObjectPermission.objects.count() == 0


@pytest.mark.django_db
def test_visible_patients_is_one_query_however_many_patients(django_assert_num_queries):
    user, team = UserFactory.create(), GroupFactory.create()
    user.groups.add(team)
    direct = [PatientFactory.create() for _ in range(4)]
    through_team = [PatientFactory.create() for _ in range(3)]
    own = PatientFactory.create(user=user)
    [PatientFactory.create() for _ in range(5)]  # unrelated
    for patient in direct:
        patient_access_grant(patient=patient, perms=["view_patient"], user=user, actor=None)
    for patient in through_team:
        patient_access_grant(patient=patient, perms=["view_patient"], group=team, actor=None)
    list(visible_patients(user))  # warms Django's content type cache, as a running server has

    with django_assert_num_queries(1):
        visible = list(visible_patients(user))

    assert {p.pk for p in visible} == {p.pk for p in [*direct, *through_team, own]}
    assert [p.pk for p in visible] == [
        p.pk
        for p in Patient.objects.filter(pk__in=[p.pk for p in visible]).order_by(
            "family_name", "given_names", "pk"
        )
    ]


@pytest.mark.django_db
def test_breaking_the_glass_needs_the_permission_and_a_reason():
    patient = PatientFactory.create()
    doctor = UserFactory.create(username="synthetic-emergency-doctor")

    with pytest.raises(NotAllowed):
        patient_break_glass(
            user=doctor, patient_id=patient.pk, reason="unconscious", entry_point=REST
        )
    doctor.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    doctor = type(doctor).objects.get(pk=doctor.pk)  # a fresh permission cache
    with pytest.raises(InvalidInput, match=r"^reason: required to break the glass$"):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason=" ", entry_point=REST)
    assert AuditEvent.objects.count() == 0

    grant = patient_break_glass(
        user=doctor, patient_id=patient.pk, reason="unconscious  on arrival", entry_point=REST
    )

    assert (grant.patient_id, grant.user_id, grant.reason) == (
        patient.pk,
        doctor.pk,
        "unconscious on arrival",
    )
    event = AuditEvent.objects.get()
    assert (event.action, event.purpose, event.actor_id, event.detail) == (
        "break_glass",
        "emergency",
        doctor.pk,
        {
            "reason": "unconscious on arrival",
            "grant": grant.pk,
            "expires_at": grant.expires_at.astimezone(dt.UTC).isoformat(),
        },
    )


def embedded_visible(user, patient_id: int, perm: str) -> bool:
    condition, params = patient_visible_condition(user, "pp.id", perm)  # type: ignore[arg-type]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END FROM patients_patient pp "
            "WHERE pp.id = %s",
            [*params, patient_id],
        )
        return cursor.fetchone() == (1,)


def test_the_single_patient_check_answers_as_the_visible_set(world):
    """`patient_visible` (SQL probes) and `visible_patient_ids` (the set) are two writings
    of one rule: for everyone, both permissions, and grants of every kind, they agree."""
    patient, coordinator = world["patient"], world["owner"]
    editor_team = GroupFactory.create()
    editor = UserFactory.create(username="synthetic-editor")
    editor.groups.add(editor_team)
    patient_access_grant(patient=patient, perms=["change_patient"], group=editor_team,
                         actor=coordinator)  # fmt: skip
    doctor = UserFactory.create(username="synthetic-emergency")
    doctor.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    doctor = type(doctor).objects.get(pk=doctor.pk)
    patient_break_glass(user=doctor, patient_id=patient.pk, reason="unconscious", entry_point=REST)
    expired = UserFactory.create(username="synthetic-expired")
    expired.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    expired = type(expired).objects.get(pk=expired.pk)
    patient_break_glass(user=expired, patient_id=patient.pk, reason="unconscious",
                        entry_point=REST, now=timezone.now() - dt.timedelta(days=2))  # fmt: skip
    people = {**world, "editor": editor, "emergency": doctor, "expired emergency": expired}
    people.pop("patient")

    answers = {}
    for who, user in people.items():
        for perm in ("view_patient", "change_patient"):
            in_set = patient.pk in set(visible_patient_ids(user, perm))
            assert patient_visible(user, patient.pk, perm) is in_set, (who, perm)
            if user.is_authenticated and user.is_active:
                # The same rule as a condition on a column of another statement.
                assert embedded_visible(user, patient.pk, perm) is in_set, (who, perm)
            answers[who, perm] = in_set

    # The cases cover both answers for both permissions.
    assert answers["emergency", "view_patient"] is True
    assert answers["expired emergency", "view_patient"] is False
    assert answers["emergency", "change_patient"] is False
    assert answers["editor", "change_patient"] is True
    assert answers["the patient", "view_patient"] is True
    assert answers["the patient", "change_patient"] is False
