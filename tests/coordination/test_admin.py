"""Operations staff's admin: read-only pages, changes only through actions calling the
services."""

from __future__ import annotations

import pytest
from django.urls import reverse
from oauth2_provider.models import AccessToken

from api.models import PlatformAccount
from api.services.platforms import platform_client_create
from directory.models import CareTeamMember, Organization
from directory.services import organization_create
from patients.models import AuditEvent
from patients.services import patient_access_grant
from tests.coordination.conftest import Scene


@pytest.fixture
def platform(db):
    organization = organization_create(
        name="Synthetic platform org", kind=Organization.Kind.PLATFORM, actor=None
    )
    return platform_client_create(
        slug="adm", name="Synthetic platform", organization=organization,
        scopes=["patients:read"], actor=None,
    )  # fmt: skip


def test_disabling_a_platform_from_the_admin_goes_through_the_service(admin_client, platform):
    url = reverse("admin:api_platformaccount_changelist")

    response = admin_client.post(
        url, {"action": "disable", "_selected_action": [platform.account.pk]}
    )

    assert response.status_code == 302
    account = PlatformAccount.objects.select_related("user").get(pk=platform.account.pk)
    assert account.user.is_active is False
    assert AccessToken.objects.count() == 0


def test_the_admin_pages_are_read_only(admin_client, platform):
    change = admin_client.get(
        reverse("admin:api_platformaccount_change", args=[platform.account.pk])
    )
    add = admin_client.get(reverse("admin:directory_organization_add"))
    delete = admin_client.post(
        reverse("admin:directory_organization_delete", args=[platform.account.organization_id])
    )
    tokens = admin_client.get(reverse("admin:api_apitoken_changelist"))

    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert (add.status_code, delete.status_code, tokens.status_code) == (403, 403, 200)
    assert Organization.objects.filter(pk=platform.account.organization_id).exists()


def test_ending_a_membership_from_the_admin_revokes_access(admin_client, admin_user, scene: Scene):
    patient_access_grant(patient=scene.patient, perms=["view_patient"], user=admin_user, actor=None)
    nurse = CareTeamMember.objects.get(practitioner=scene.nurse, active=True)
    url = reverse("admin:directory_careteammember_changelist")

    listing = admin_client.get(url)
    response = admin_client.post(url, {"action": "end_membership", "_selected_action": [nurse.pk]})

    assert {m.pk for m in listing.context["cl"].result_list} == set(
        CareTeamMember.objects.filter(care_team__patient=scene.patient).values_list("pk", flat=True)
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.active is False
    revoke = AuditEvent.objects.filter(action="revoke", patient=scene.patient).latest("id")
    assert (revoke.actor_id, revoke.detail["user_id"]) == (admin_user.pk, scene.nurse.user_id)


def test_care_team_members_of_patients_not_granted_are_not_listed(admin_client, scene: Scene):
    response = admin_client.get(reverse("admin:directory_careteammember_changelist"))

    assert list(response.context["cl"].result_list) == []
