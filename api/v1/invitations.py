"""Invitations: a practitioner, or a patient for their portal, gets an e-mail with a
single-use link to set their password (directory.services.invitations). The answer never
holds the link's token: only the person at the e-mail address can use it.

- `POST /practitioners/{id}/invitation/`: for those who may create practitioners
  (directory.add_practitioner: a platform with `directory:write`, a coordinator).
- `POST /patients/{id}/portal-invitation/`: for those who may change the patient
  (change_patient: its care team, the platform in it with `patients:write`); a patient the
  caller may not see is 404. Audited under the patient.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api.audit import client_address
from api.idempotency import IdempotentPostMixin
from api.problems import problem
from api.selectors import platform_account_for_user
from api.serializers import StrictSerializer
from directory.models import Invitation
from directory.selectors import practitioner_get
from directory.services.invitations import (
    LANGUAGES,
    IssuedInvitation,
    patient_portal_invite,
    practitioner_invite,
)
from patients.models import AuditEvent
from patients.selectors import access_patient

LANGUAGE_FIELD = serializers.ChoiceField(
    choices=LANGUAGES,
    required=False,
    default="fr",
    help_text="The language of the e-mail and of the page it links to (default fr).",
)


class PractitionerInvitationSerializer(StrictSerializer):
    language = LANGUAGE_FIELD


class PortalInvitationSerializer(StrictSerializer):
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Where to send the invitation; it becomes the portal account's address. "
        "Default: the portal account's address, else the patient's `email`.",
    )
    language = LANGUAGE_FIELD


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    class Meta:
        model = Invitation
        fields = ["id", "kind", "expires_at"]
        read_only_fields = fields


EMAIL_FAILED = OpenApiResponse(
    description="The e-mail server refused or could not be reached: ask again later (the "
    "new invitation revokes this one)."
)


def _actor(request: Request) -> AbstractBaseUser:
    return cast(AbstractBaseUser, request.user)


def _site_url(request: Request) -> str:
    return str(settings.PARCOURS_PUBLIC_URL or request.build_absolute_uri("/"))


def _accepted(issued: IssuedInvitation) -> Response:
    return Response(InvitationSerializer(issued.invitation).data, status=status.HTTP_202_ACCEPTED)


def _email_failed(error: OSError) -> Response:
    return problem(
        503,
        _("E-mail not sent"),
        _("the invitation e-mail could not be sent (%(error)s); try again later")
        % {"error": type(error).__name__},
        "email-not-sent",
    )


class PractitionerInvitationView(IdempotentPostMixin):
    @extend_schema(
        request=PractitionerInvitationSerializer,
        responses={
            202: InvitationSerializer,
            403: OpenApiResponse(description="The caller may not manage the directory"),
            404: OpenApiResponse(description="No such active practitioner"),
            409: OpenApiResponse(
                description="The account has no e-mail address, is already in use (a password "
                "set or a sign-in: use the password reset), is deactivated, or is a "
                "platform's service account"
            ),
            503: EMAIL_FAILED,
        },
        summary="Invite a practitioner to set their password",
        description=(
            "Sends the practitioner, at their account's e-mail address, a link to set the "
            "password of their account once. The link is valid once, for INVITATION_DAYS "
            "(7 days by default); asking again revokes the earlier link. The answer (202) "
            "gives the invitation's id and expiry, never the link. For accounts nobody has "
            "used yet: a practitioner who has a password resets it from the login page. "
            "For coordinators who manage the directory, and platforms whose token carries "
            "`directory:write`."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        if not request.user.has_perm("directory.add_practitioner"):
            raise PermissionDenied(
                _("this needs the permission %(perm)s") % {"perm": "directory.add_practitioner"}
            )
        data = PractitionerInvitationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        practitioner = practitioner_get(practitioner_id=pk)
        if platform_account_for_user(user_id=practitioner.user_id) is not None:
            return problem(
                409,
                "Conflict",
                "a platform's service account signs in with its client credentials, not a password",
                "conflict",
            )
        try:
            issued = practitioner_invite(
                practitioner=practitioner,
                actor=_actor(request),
                site_url=_site_url(request),
                language=data.validated_data["language"],
            )
        except OSError as error:
            return _email_failed(error)
        return _accepted(issued)


class PortalInvitationView(IdempotentPostMixin):
    @extend_schema(
        request=PortalInvitationSerializer,
        responses={
            202: InvitationSerializer,
            400: OpenApiResponse(description="`email` is not an e-mail address"),
            404: OpenApiResponse(description="No such patient, or one the caller may not change"),
            409: OpenApiResponse(
                description="No e-mail address (none given, none on the patient), the portal "
                "account is already in use (a password set or a sign-in: the patient resets "
                "it from the login page) or deactivated, or the address is another account's "
                "username"
            ),
            503: EMAIL_FAILED,
        },
        summary="Invite a patient to their portal",
        description=(
            "Creates the patient's portal account if they have none (its username is the "
            "e-mail address) and sends them a link to set its password once: then they see "
            "their own pathways and tasks, and nothing of anyone else. The e-mail goes to "
            "`email` if given, else to the account's or the patient's address. The link is "
            "valid once, for INVITATION_DAYS (7 days by default); asking again revokes the "
            "earlier link. The answer (202) gives the invitation's id and expiry, never the "
            "link. For the patient's care team, and the platform in it whose token carries "
            "`patients:write`; recorded in the patient's audit trail."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        patient = access_patient(user=request.user, patient_id=pk, perm="change_patient")
        data = PortalInvitationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(data.validated_data)
        try:
            issued = patient_portal_invite(
                patient=patient,
                actor=_actor(request),
                site_url=_site_url(request),
                email=fields["email"],
                language=fields["language"],
                entry_point=AuditEvent.EntryPoint.REST,
                client_address=client_address(request),
            )
        except OSError as error:
            return _email_failed(error)
        return _accepted(issued)


urlpatterns: list[URLPattern] = [
    path(
        "practitioners/<int:pk>/invitation/",
        PractitionerInvitationView.as_view(),
        name="practitioner-invitation",
    ),
    path(
        "patients/<int:pk>/portal-invitation/",
        PortalInvitationView.as_view(),
        name="patient-portal-invitation",
    ),
]
