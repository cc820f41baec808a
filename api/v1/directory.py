"""The directory (organisations, practitioners, service teams) and patients' care teams.

Directory rows are not patient data: any professional may list them, and creating them needs
the model's global permission. A care team is patient data: reading it goes through
`access_patient` and is audited; changing it is for the patient's GP or a coordinator of
that care team.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import audit_read
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.scopes import IsAuthenticatedWithScope
from api.serializers import StrictSerializer
from api.services.registration import COORDINATOR_ROLE
from core.errors import NotFound
from directory.models import (
    CareTeamMember,
    Organization,
    Practitioner,
    ServiceTeam,
    ServiceTeamMembership,
)
from directory.selectors import (
    PLATFORM_ROLE,
    care_roles,
    care_team_members,
    organization_get,
    organization_list,
    practitioner_get,
    practitioner_list,
    practitioner_of,
    service_team_get,
    service_team_list,
)
from directory.services import (
    care_team_member_add,
    care_team_member_remove,
    organization_create,
    practitioner_create,
    service_team_create,
    service_team_member_add,
    service_team_member_remove,
)
from patients.models import Patient
from patients.selectors import access_patient, patient_get

GP_ROLE = "gp"


class ById(Cursor):
    ordering = "id"


class IsProfessional(BasePermission):
    """Reads of the directory are for professionals (an active practitioner, or staff; a
    platform account acts through its practitioner record), not for patient portal accounts.
    Writes are checked per view against a model permission."""

    message = gettext_lazy("the directory is for professionals")

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        user = request.user
        return bool(user.is_staff) or practitioner_of(user) is not None


DIRECTORY_PERMISSIONS = [IsAuthenticatedWithScope, IsProfessional]


def _actor(request: Request) -> AbstractBaseUser:
    return cast(AbstractBaseUser, request.user)


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(_("this needs the permission %(perm)s") % {"perm": perm})


def _patient_for_change(request: Request, patient_id: int) -> Patient:
    """The patient, if the caller may change its care team: a coordinator of that team (even
    after the patient objected to sharing, to organise care), the patient's GP in it, or a
    platform in it (the one that registered the patient joined it; its token needs the
    patients:write scope for this route). PatientNotFound when they may not even see the
    patient, 403 when they see it but play another role."""
    roles = care_roles(user=request.user, patient_id=patient_id)
    if COORDINATOR_ROLE in roles:
        return patient_get(patient_id=patient_id)
    patient = access_patient(user=request.user, patient_id=patient_id)  # 404 alike when unseen
    if GP_ROLE in roles or PLATFORM_ROLE in roles:
        return patient
    raise PermissionDenied(
        "changing the care team is for the patient's GP, a coordinator of the team or its platform"
    )


# Serializers.


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    # A plain string here, the enum on the request side only: another "kind" (history
    # entries) would otherwise collide in the schema's enum names; see the report.
    kind = serializers.CharField(
        read_only=True, help_text="One of " + ", ".join(Organization.Kind.values)
    )

    class Meta:
        model = Organization
        fields = ["id", "name", "kind", "finess", "created_at"]
        read_only_fields = fields


class OrganizationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Organization.Kind.choices)
    finess = serializers.CharField(max_length=9, required=False, allow_blank=True, default="")


class PractitionerSerializer(serializers.ModelSerializer[Practitioner]):
    display_name = serializers.CharField(read_only=True)
    organization = serializers.IntegerField(
        source="organization_id", allow_null=True, read_only=True
    )

    class Meta:
        model = Practitioner
        fields = ["id", "display_name", "profession", "specialty", "rpps", "organization"]
        read_only_fields = fields


class PractitionerCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    given_name = serializers.CharField(max_length=150)
    family_name = serializers.CharField(max_length=150)
    profession = serializers.ChoiceField(choices=Practitioner.Profession.choices)
    rpps = serializers.CharField(
        max_length=11, required=False, allow_blank=True, default="", help_text="11 digits, Luhn."
    )
    specialty = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), required=False, allow_null=True, default=None
    )


class ServiceTeamSerializer(serializers.ModelSerializer[ServiceTeam]):
    organization = serializers.IntegerField(
        source="organization_id", allow_null=True, read_only=True
    )
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)
    members = serializers.SerializerMethodField(help_text="Ids of the member practitioners.")

    class Meta:
        model = ServiceTeam
        fields = ["id", "name", "organization", "roles", "members", "created_at"]
        read_only_fields = fields

    def get_members(self, obj: ServiceTeam) -> list[int]:
        return sorted(m.practitioner_id for m in obj.memberships.all())


class ServiceTeamCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    roles = serializers.ListField(
        child=serializers.RegexField(r"^[a-z0-9_-]{1,63}$"), required=False, default=list
    )
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), required=False, allow_null=True, default=None
    )


class TeamMemberAddSerializer(StrictSerializer):
    practitioner = serializers.PrimaryKeyRelatedField(
        queryset=Practitioner.objects.filter(active=True)
    )


class TeamMembershipSerializer(serializers.ModelSerializer[ServiceTeamMembership]):
    team = serializers.IntegerField(source="team_id", read_only=True)
    practitioner = serializers.IntegerField(source="practitioner_id", read_only=True)

    class Meta:
        model = ServiceTeamMembership
        fields = ["team", "practitioner", "since"]
        read_only_fields = fields


class MemberPractitionerSerializer(serializers.ModelSerializer[Practitioner]):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = Practitioner
        fields = ["id", "display_name", "profession"]
        read_only_fields = fields


class MemberTeamSerializer(serializers.ModelSerializer[ServiceTeam]):
    class Meta:
        model = ServiceTeam
        fields = ["id", "name"]
        read_only_fields = fields


class CareTeamMemberSerializer(serializers.ModelSerializer[CareTeamMember]):
    practitioner = MemberPractitionerSerializer(read_only=True, allow_null=True)
    service_team = MemberTeamSerializer(read_only=True, allow_null=True)

    class Meta:
        model = CareTeamMember
        fields = ["id", "role", "practitioner", "service_team", "since"]
        read_only_fields = fields


class CareTeamMemberAddSerializer(StrictSerializer):
    role = serializers.RegexField(r"^[a-z0-9_-]{1,63}$", max_length=63)
    practitioner = serializers.PrimaryKeyRelatedField(
        queryset=Practitioner.objects.all(), required=False, allow_null=True, default=None
    )
    service_team = serializers.PrimaryKeyRelatedField(
        queryset=ServiceTeam.objects.all(), required=False, allow_null=True, default=None
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs["practitioner"] is None) == (attrs["service_team"] is None):
            raise serializers.ValidationError(_("give exactly one of practitioner, service_team"))
        return attrs


# Views.

DIRECTORY_MANAGERS = (
    "For accounts allowed to manage the directory: coordinators, and platforms whose token "
    "holds directory:write (403 otherwise)."
)


@extend_schema_view(
    get=extend_schema(
        summary="List organisations",
        description=(
            "The organisations of the directory (hospitals, practices, services), oldest first. "
            "For practitioners, staff and platform accounts (403 for a patient portal account)."
        ),
    )
)
class OrganizationListView(IdempotentPostMixin, ListAPIView[Organization]):
    serializer_class = OrganizationSerializer
    pagination_class = ById
    permission_classes = DIRECTORY_PERMISSIONS

    def get_queryset(self) -> QuerySet[Organization]:
        return organization_list()

    @extend_schema(
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
        summary="Create an organisation",
        description=(
            "Add an organisation to the directory; an invalid FINESS number is a 400 naming it. "
            + DIRECTORY_MANAGERS
        ),
    )
    def post(self, request: Request) -> Response:
        _require(request, "directory.add_organization")
        data = OrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = organization_create(**data.validated_data, actor=_actor(request))
        return Response(OrganizationSerializer(organization).data, status=201)


class OrganizationDetailView(APIView):
    permission_classes = DIRECTORY_PERMISSIONS

    @extend_schema(
        responses=OrganizationSerializer,
        summary="Read an organisation",
        description=(
            "One organisation of the directory. For practitioners, staff and platform accounts."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(OrganizationSerializer(organization_get(organization_id=pk)).data)


@extend_schema_view(
    get=extend_schema(
        summary="List practitioners",
        description=(
            "The active practitioners of the directory, oldest first, with their profession "
            "and national identifier (RPPS). For practitioners, staff and platform accounts "
            "(403 for a patient portal account)."
        ),
    )
)
class PractitionerListView(IdempotentPostMixin, ListAPIView[Practitioner]):
    serializer_class = PractitionerSerializer
    pagination_class = ById
    permission_classes = DIRECTORY_PERMISSIONS

    def get_queryset(self) -> QuerySet[Practitioner]:
        return practitioner_list()

    @extend_schema(
        request=PractitionerCreateSerializer,
        responses={201: PractitionerSerializer},
        summary="Register a practitioner",
        description=(
            "Add a practitioner (and their user account) to the directory. An RPPS number or "
            "username already used is a 409 naming it. " + DIRECTORY_MANAGERS
        ),
    )
    def post(self, request: Request) -> Response:
        _require(request, "directory.add_practitioner")
        data = PractitionerCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        practitioner = practitioner_create(**data.validated_data, actor=_actor(request))
        return Response(PractitionerSerializer(practitioner).data, status=201)


class PractitionerDetailView(APIView):
    permission_classes = DIRECTORY_PERMISSIONS

    @extend_schema(
        responses=PractitionerSerializer,
        summary="Read a practitioner",
        description="One active practitioner of the directory. For practitioners, staff "
        "and platform accounts.",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(PractitionerSerializer(practitioner_get(practitioner_id=pk)).data)


class PractitionerMeView(APIView):
    @extend_schema(
        responses=PractitionerSerializer,
        summary="Read your own practitioner profile",
        description="The caller's own practitioner profile; 404 if the caller is not one.",
    )
    def get(self, request: Request) -> Response:
        practitioner = practitioner_of(request.user)
        if practitioner is None:
            raise NotFound("practitioner", "me")
        return Response(PractitionerSerializer(practitioner).data)


@extend_schema_view(
    get=extend_schema(
        summary="List service teams",
        description=(
            "The service teams of the directory (a ward, a home-care team) with their members. "
            "For practitioners, staff and platform accounts (403 for a patient portal account)."
        ),
    )
)
class ServiceTeamListView(IdempotentPostMixin, ListAPIView[ServiceTeam]):
    serializer_class = ServiceTeamSerializer
    pagination_class = ById
    permission_classes = DIRECTORY_PERMISSIONS

    def get_queryset(self) -> QuerySet[ServiceTeam]:
        return service_team_list()

    @extend_schema(
        request=ServiceTeamCreateSerializer,
        responses={201: ServiceTeamSerializer},
        summary="Create a service team",
        description="Add a service team to an organisation. " + DIRECTORY_MANAGERS,
    )
    def post(self, request: Request) -> Response:
        _require(request, "directory.add_serviceteam")
        data = ServiceTeamCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = service_team_create(**data.validated_data, actor=_actor(request))
        return Response(ServiceTeamSerializer(service_team_list().get(pk=team.pk)).data, status=201)


class ServiceTeamMemberListView(IdempotentPostMixin, APIView):
    @extend_schema(
        request=TeamMemberAddSerializer,
        responses={201: TeamMembershipSerializer},
        summary="Add a practitioner to a service team",
        description=(
            "The practitioner joins the team (again: nothing changes). " + DIRECTORY_MANAGERS
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        _require(request, "directory.change_serviceteam")
        team = service_team_get(team_id=pk)
        data = TeamMemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = service_team_member_add(
            team=team, practitioner=data.validated_data["practitioner"], actor=_actor(request)
        )
        return Response(TeamMembershipSerializer(membership).data, status=201)


class ServiceTeamMemberDetailView(APIView):
    @extend_schema(
        responses={204: None},
        summary="Remove a practitioner from a service team",
        description="The practitioner leaves the team; 404 if they are not in it. "
        + DIRECTORY_MANAGERS,
    )
    def delete(self, request: Request, pk: int, practitioner_id: int) -> Response:
        _require(request, "directory.change_serviceteam")
        team = service_team_get(team_id=pk)
        practitioner = practitioner_get(practitioner_id=practitioner_id, active_only=False)
        service_team_member_remove(team=team, practitioner=practitioner, actor=_actor(request))
        return Response(status=204)


@extend_schema_view(
    get=extend_schema(
        summary="List a patient's care team",
        description=(
            "The members of the patient's care team (practitioners, service teams, platforms) "
            "and the role each plays. For whoever may see the patient; 404 otherwise."
        ),
    )
)
class CareTeamView(IdempotentPostMixin, ListAPIView[CareTeamMember]):
    serializer_class = CareTeamMemberSerializer
    pagination_class = ById

    def get_queryset(self) -> QuerySet[CareTeamMember]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return CareTeamMember.objects.none()
        patient = access_patient(user=self.request.user, patient_id=self.kwargs["patient_id"])
        return care_team_members(patient=patient)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        patient_id = self.kwargs["patient_id"]
        audit_read(request, resource_type="CareTeam", resource_id=patient_id, patient_id=patient_id)
        return response

    @extend_schema(
        request=CareTeamMemberAddSerializer,
        responses={201: CareTeamMemberSerializer},
        summary="Add a member to a patient's care team",
        description=(
            "Add a practitioner or a service team to the patient's care team, in a role. For "
            "the patient's GP, a coordinator of its care team, or the platform in it (the one "
            "that registered the patient; its token needs patients:write): 403 for another "
            "member, 404 for a caller who may not see the patient. A member already there "
            "is a 409."
        ),
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = _patient_for_change(request, patient_id)
        data = CareTeamMemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = care_team_member_add(patient=patient, actor=_actor(request), **data.validated_data)
        return Response(CareTeamMemberSerializer(member).data, status=201)


class CareTeamMemberView(APIView):
    @extend_schema(
        responses={204: None},
        summary="Remove a member from a patient's care team",
        description=(
            "The member leaves the care team and loses access to the patient. Same callers "
            "as adding one; 404 if the member is not in this patient's care team."
        ),
    )
    def delete(self, request: Request, patient_id: int, member_id: int) -> Response:
        patient = _patient_for_change(request, patient_id)
        if not care_team_members(patient=patient).filter(pk=member_id).exists():
            raise NotFound("care team member", member_id)
        care_team_member_remove(member_id=member_id, actor=_actor(request))
        return Response(status=204)


urlpatterns: list[URLPattern] = [
    path("organizations/", OrganizationListView.as_view(), name="organizations"),
    path("organizations/<int:pk>/", OrganizationDetailView.as_view(), name="organization-detail"),
    path("practitioners/", PractitionerListView.as_view(), name="practitioners"),
    path("practitioners/me/", PractitionerMeView.as_view(), name="practitioner-me"),
    path("practitioners/<int:pk>/", PractitionerDetailView.as_view(), name="practitioner-detail"),
    path("teams/", ServiceTeamListView.as_view(), name="teams"),
    path("teams/<int:pk>/members/", ServiceTeamMemberListView.as_view(), name="team-members"),
    path(
        "teams/<int:pk>/members/<int:practitioner_id>/",
        ServiceTeamMemberDetailView.as_view(),
        name="team-member-detail",
    ),
    path("patients/<int:patient_id>/care-team/", CareTeamView.as_view(), name="care-team"),
    path(
        "patients/<int:patient_id>/care-team/<int:member_id>/",
        CareTeamMemberView.as_view(),
        name="care-team-member",
    ),
]
