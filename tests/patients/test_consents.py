from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from patients.errors import Conflict, InvalidConsent, NoActiveConsent
from patients.models import AuditEvent, Consent
from patients.selectors import consent_active, consent_list
from patients.services import consent_record, consent_withdraw
from tests.patients.conftest import T0

WEB = AuditEvent.EntryPoint.WEB
MONITORING = Consent.Scope.REMOTE_MONITORING


@pytest.mark.django_db
def test_recording_a_consent_makes_it_active_and_audits_it(patient, nurse):
    consent = consent_record(
        patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB, note="oral", now=T0
    )

    assert consent_active(patient_id=patient.pk, scope=MONITORING) is True
    stored = Consent.objects.get()
    assert (stored.status, stored.recorded_by_id, stored.recorded_at, stored.note) == (
        "active",
        nurse.pk,
        T0,
        "oral",
    )
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.resource_id, event.detail) == (
        "create",
        "Consent",
        str(consent.pk),
        {"scope": "remote_monitoring"},
    )


@pytest.mark.django_db
def test_a_second_active_consent_for_the_same_scope_is_a_conflict(patient, nurse):
    first = consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB, now=T0)

    with pytest.raises(Conflict) as caught:
        consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB)

    assert str(caught.value) == (
        f"patient {patient.pk} already has an active remote_monitoring consent "
        f"(consent {first.pk}, recorded 2026-03-02T08:00:00+00:00)"
    )
    assert Consent.objects.count() == 1
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_other_scopes_are_independent(patient, nurse):
    for scope in Consent.Scope.values:
        consent_record(patient=patient, scope=scope, actor=nurse, entry_point=WEB)

    assert sorted(Consent.objects.filter(status="active").values_list("scope", flat=True)) == [
        "care_team_sharing",
        "external_sharing",
        "remote_monitoring",
    ]


@pytest.mark.django_db
def test_the_database_refuses_a_second_active_consent_too(patient, nurse):
    consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB)

    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(patient=patient, scope=MONITORING, recorded_at=T0)


@pytest.mark.django_db
def test_withdrawal_takes_effect_at_once(patient, nurse):
    consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB, now=T0)
    at = T0 + dt.timedelta(days=2)

    withdrawn = consent_withdraw(
        patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB, note="by phone", now=at
    )

    assert consent_active(patient_id=patient.pk, scope=MONITORING) is False
    stored = Consent.objects.get(pk=withdrawn.pk)
    assert (stored.status, stored.withdrawn_at, stored.withdrawn_by_id) == (
        "withdrawn",
        at,
        nurse.pk,
    )
    assert stored.withdrawal_note == "by phone"
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["create", "update"]
    assert AuditEvent.objects.order_by("id")[1].detail == {
        "scope": "remote_monitoring",
        "status": "withdrawn",
    }


@pytest.mark.django_db
def test_consent_can_be_given_again_after_withdrawal(patient, nurse):
    old = consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB, now=T0)
    consent_withdraw(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB)

    new = consent_record(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB)

    assert consent_active(patient_id=patient.pk, scope=MONITORING) is True
    assert [(c.pk, c.status) for c in consent_list(patient_id=patient.pk)] == [
        (new.pk, "active"),
        (old.pk, "withdrawn"),
    ]


@pytest.mark.django_db
def test_withdrawing_without_an_active_consent_is_not_found(patient, nurse):
    with pytest.raises(
        NoActiveConsent, match=f"patient {patient.pk} has no active remote_monitoring"
    ):
        consent_withdraw(patient=patient, scope=MONITORING, actor=nurse, entry_point=WEB)

    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_scope_is_refused(patient, nurse):
    with pytest.raises(InvalidConsent) as caught:
        consent_record(patient=patient, scope="research", actor=nurse, entry_point=WEB)

    assert str(caught.value) == (
        "scope: 'research' is not one of care_team_sharing, remote_monitoring, external_sharing"
    )
    assert Consent.objects.count() == 0
