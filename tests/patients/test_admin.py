from __future__ import annotations

import pytest
from django.urls import reverse

from patients.models import AuditEvent
from patients.services import patient_access_grant
from tests.patients.factories import PatientFactory


@pytest.mark.django_db
def test_the_admin_lists_only_granted_patients_and_audits_opening_one(admin_client, admin_user):
    granted, other = PatientFactory.create(), PatientFactory.create()
    patient_access_grant(patient=granted, perms=["view_patient"], user=admin_user, actor=None)

    listing = admin_client.get(reverse("admin:patients_patient_changelist"))
    opened = admin_client.get(reverse("admin:patients_patient_change", args=[granted.pk]))
    refused = admin_client.get(reverse("admin:patients_patient_change", args=[other.pk]))

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [granted]
    assert opened.status_code == 200
    assert refused.status_code == 302  # the admin's "does not exist" answer
    # After the admin client's login and the grant's own record: the list (naming the one
    # patient it showed), the record opened, and the refusal recorded under its patient.
    events = AuditEvent.objects.exclude(action="login").order_by("id")[1:]
    assert [
        (e.action, e.entry_point, e.purpose, e.outcome, e.patient_id, e.resource_id) for e in events
    ] == [
        ("search", "admin", "administration", "success", granted.pk, str(granted.pk)),
        ("read", "admin", "administration", "success", granted.pk, str(granted.pk)),
        ("read", "admin", "administration", "denied", other.pk, str(other.pk)),
    ]


@pytest.mark.django_db
def test_the_audit_trail_pages_render_read_only(admin_client, admin_user):
    patient = PatientFactory.create()
    patient_access_grant(patient=patient, perms=["view_patient"], user=admin_user, actor=None)
    event = AuditEvent.objects.get(action="grant")

    listing = admin_client.get(reverse("admin:patients_auditevent_changelist"))
    detail = admin_client.get(reverse("admin:patients_auditevent_change", args=[event.pk]))
    adding = admin_client.get(reverse("admin:patients_auditevent_add"))
    deleting = admin_client.post(reverse("admin:patients_auditevent_delete", args=[event.pk]))

    assert (listing.status_code, detail.status_code) == (200, 200)
    assert (adding.status_code, deleting.status_code) == (403, 403)
    assert b'name="_save"' not in detail.content
    # Reading the trail is an audit of the patient it names; the refused pages wrote nothing.
    assert [
        (e.action, e.purpose, e.patient_id, e.resource_id)
        for e in AuditEvent.objects.exclude(pk=event.pk).exclude(action="login").order_by("id")
    ] == [
        ("search", "audit", patient.pk, str(event.pk)),
        ("read", "audit", patient.pk, str(event.pk)),
    ]
