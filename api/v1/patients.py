"""Patients: list and create, read and update (ETag / If-Match), consents, observations and
the patient's audit trail.

Thin views: every read goes through `patients.selectors` (filtered by the caller's object
permissions), every write through a service; every read of patient data is audited.
Include with `path("api/v1/", include("api.v1.patients"))`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import audit_read, audit_rows_read, client_address, page_rows, query_detail
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.preconditions import PreconditionFailed, etag, expected_version
from api.problems import problem
from api.schema import etag_header
from api.serializers import StrictSerializer, refuse_unknown_fields, unknown_field_errors
from api.services.registration import registrar_joins_care_team
from coordination.models import RiskBand, risk_of_rank
from coordination.selectors import patient_risk_rank, patient_risk_rank_subquery
from coordination.services.observations import observations_ingest
from directory.services import consent_set
from patients import errors as patients_errors
from patients.models import AuditEvent, Consent, Observation, Patient
from patients.selectors import (
    MAX_AUDIT_RANGE,
    access_patient,
    audit_events_for_patient,
    consent_list,
    observation_list,
    visible_patients,
)
from patients.selectors.observations import MAX_LIST_RANGE
from patients.services import (
    PatientChanges,
    patient_create,
    patient_update,
)
from patients.services.observations import MAX_BATCH

ETAG_PREFIX = "p"
DEFAULT_OBSERVATION_RANGE = dt.timedelta(days=30)


# --- serializers -------------------------------------------------------------------------


class PatientSerializer(serializers.ModelSerializer[Patient]):
    # Blank on a record without them: the generated schema (an email format, an enum of
    # OIDs) would otherwise refuse the empty string these fields hold then.
    email = serializers.CharField(read_only=True, help_text="An email address, or empty.")
    # The INS leaves only with a qualified identity (Patient.ins_shareable): null otherwise,
    # even when one is stored; `identity_status` always says why.
    ins_nir = serializers.SerializerMethodField(
        help_text="The INS number (NIR or NIA, 15 characters) when `identity_status` is "
        "`qualified`; null for any other status (an INS stored for a provisional, recovered "
        "or validated identity is not sent: it may not be used for exchange) and without INS."
    )
    ins_oid = serializers.SerializerMethodField(
        help_text="The OID naming the INS number's kind, sent and null together with `ins_nir`."
    )

    risk_band = serializers.SerializerMethodField(
        help_text="The patient's current triage band: the highest over their active pathways "
        "(low when none is active)."
    )
    risk_score = serializers.SerializerMethodField(
        help_text="The score that goes with `risk_band` (the highest score among the active "
        "pathways of that band)."
    )

    class Meta:
        model = Patient
        fields = [
            "id", "family_name", "given_names", "birth_date", "sex", "birth_place_code",
            "phone", "email", "address_lines", "postal_code", "city", "ins_nir", "ins_oid",
            "identity_status", "risk_band", "risk_score", "version", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def _risk(self, obj: Patient) -> tuple[str, int]:
        # A list annotates the rank (one query for the page); a single record reads it.
        rank = getattr(obj, "current_risk_rank", None)
        if rank is None:
            rank = patient_risk_rank(patient_id=obj.pk)
            obj.current_risk_rank = rank  # type: ignore[attr-defined]
        return risk_of_rank(rank)

    @extend_schema_field(serializers.CharField(min_length=15, max_length=15, allow_null=True))
    def get_ins_nir(self, obj: Patient) -> str | None:
        return obj.ins_nir if obj.ins_shareable else None

    @extend_schema_field(
        serializers.ChoiceField(
            choices=Patient._meta.get_field("ins_oid").choices or [], allow_null=True
        )
    )
    def get_ins_oid(self, obj: Patient) -> str | None:
        return obj.ins_oid if obj.ins_shareable else None

    @extend_schema_field(serializers.ChoiceField(choices=RiskBand.choices))
    def get_risk_band(self, obj: Patient) -> str:
        return self._risk(obj)[0]

    def get_risk_score(self, obj: Patient) -> int:
        return self._risk(obj)[1]


class PatientWriteSerializer(StrictSerializer):
    """Types only: the service checks identifiers, lengths and consistency, and names the
    field of each problem."""

    family_name = serializers.CharField(max_length=1000, trim_whitespace=False)
    given_names = serializers.CharField(max_length=1000, trim_whitespace=False)
    birth_date = serializers.DateField()
    sex = serializers.ChoiceField(choices=Patient.Sex.choices)
    birth_place_code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    email = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    address_lines = serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=1000),
        required=False,
        max_length=20,
    )
    postal_code = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    city = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    ins_nir = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="NIR or NIA, 15 characters. Stored whatever the identity status; the "
        "response carries it back only when the identity is `qualified`.",
    )
    ins_oid = serializers.CharField(required=False, allow_blank=True, max_length=64)
    identity_status = serializers.ChoiceField(
        choices=Patient.IdentityStatus.choices,
        required=False,
        help_text="Identitovigilance status; only a `qualified` identity's INS is sent out.",
    )


class ConsentSerializer(serializers.ModelSerializer[Consent]):
    recorded_by = serializers.IntegerField(source="recorded_by_id", allow_null=True)
    withdrawn_by = serializers.IntegerField(source="withdrawn_by_id", allow_null=True)

    class Meta:
        model = Consent
        fields = [
            "id", "scope", "status", "recorded_by", "recorded_at", "withdrawn_at",
            "withdrawn_by", "note", "withdrawal_note",
        ]  # fmt: skip
        read_only_fields = fields


class ConsentSetSerializer(StrictSerializer):
    scope = serializers.ChoiceField(
        choices=Consent.Scope.choices,
        help_text="What the patient consents to; a scope never recorded restricts nothing. "
        "Withdrawn, `care_team_sharing` hides the patient from the whole care team (their "
        "tasks go back on offer, and back to their owner when given again); "
        "`external_sharing` hides the patient from the platforms in the care team (404, no "
        "webhook); `remote_monitoring` refuses the patient's remote readings (409 "
        "`consent-withdrawn`, nothing stored), opens no missing-measurement task and shows "
        "the pathways' `monitoring` as suspended.",
    )
    given = serializers.BooleanField(help_text="true records the consent, false withdraws it.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ObservationSerializer(serializers.ModelSerializer[Observation]):
    device = serializers.IntegerField(source="device_id", allow_null=True)
    recorded_by = serializers.IntegerField(source="recorded_by_id", allow_null=True)

    class Meta:
        model = Observation
        fields = [
            "id", "code", "value", "unit", "effective_at", "device", "source", "received_at",
            "recorded_by",
        ]  # fmt: skip
        read_only_fields = fields


class ObservationInSerializer(StrictSerializer):
    """Schema only: items are validated by `observations_record`, which reports every
    problem of every item at once."""

    code = serializers.CharField(help_text="LOINC code, e.g. 29463-7 (body weight).")
    value = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False)
    unit = serializers.CharField(help_text="UCUM unit allowed for the code.")
    effective_at = serializers.DateTimeField(help_text="Timezone-aware.")
    device_id = serializers.IntegerField(required=False, allow_null=True)
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the field, not .source
        choices=Observation.Source.choices, required=False
    )


class ObservationBatchInSerializer(StrictSerializer):
    items = serializers.ListField(child=ObservationInSerializer(), max_length=MAX_BATCH)
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the field, not .source
        choices=Observation.Source.choices, required=False
    )


def _refuse_unknown_observation_fields(body: Mapping[str, Any]) -> None:
    """The body is validated by `observations_ingest`, not by the serializers above; they
    still name the fields accepted, of the batch and of each item (`items.3.<name>`)."""
    if "items" not in body:
        refuse_unknown_fields(body, ObservationInSerializer().accepted_fields())
        return
    errors: dict[str, Any] = unknown_field_errors(
        body, ObservationBatchInSerializer().accepted_fields()
    )
    items = body["items"]
    if isinstance(items, list):
        accepted = ObservationInSerializer().accepted_fields()
        per_item = {
            index: item_errors
            for index, item in enumerate(items)
            if (item_errors := unknown_field_errors(item, accepted))
        }
        if per_item:
            errors["items"] = per_item
    if errors:
        raise ValidationError(errors)


class ObservationBatchSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    items = ObservationSerializer(many=True)


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.IntegerField(source="actor_id", allow_null=True)

    class Meta:
        model = AuditEvent
        # `seq` is the record's place in the hash chain: null for the moments between its
        # commit and its chaining (patients.services.audit_chain_extend).
        fields = [
            "id", "seq", "occurred_at", "actor", "actor_label", "action", "resource_type",
            "resource_id", "purpose", "outcome", "entry_point", "detail",
        ]  # fmt: skip
        read_only_fields = fields


# --- helpers -----------------------------------------------------------------------------


class PreconditionRequired(APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = gettext_lazy("send If-Match with the patient's ETag (read it first)")
    default_code = "precondition_required"


class PatientCursor(Cursor):
    ordering = ("family_name", "given_names", "id")


class ObservationCursor(Cursor):
    page_size = 200
    max_page_size = 1000
    ordering = ("effective_at", "id")


class AuditCursor(Cursor):
    page_size = 200
    max_page_size = 1000
    ordering = "id"  # recording order; `seq` is given later


def _actor(request: Request) -> AbstractBaseUser:
    user = request.user
    # IsAuthenticated (the default permission class) has already refused anything else.
    assert isinstance(user, AbstractBaseUser)
    return user


def _patient_for_write(request: Request, pk: int) -> Patient:
    """The care team (change_patient), or the patient's own portal account, may record
    consents and observations; anyone else gets the same 404 as for a missing patient."""
    patient = access_patient(user=request.user, patient_id=pk)
    if patient.user_id is not None and patient.user_id == request.user.pk:
        return patient
    return access_patient(user=request.user, patient_id=pk, perm="change_patient")


def _moment(request: Request, name: str, *, required: bool) -> dt.datetime | None:
    """An ISO-8601 date (midnight, server time zone) or an aware date-time."""
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        if required:
            raise ValidationError({name: [_("required (ISO-8601 date or date-time)")]})
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(
            {name: [_("%(raw)r is not an ISO-8601 date or date-time") % {"raw": raw}]}
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        if "T" in raw:
            raise ValidationError({name: [_("give the time zone offset (Z or +01:00)")]})
        value = timezone.make_aware(value)
    return value


def _invalid_identifier(exc: patients_errors.InvalidIdentifier) -> Response:
    """As the generic invalid-input problem, with the INS key the number calls for."""
    error: dict[str, str] = {"field": exc.field, "message": exc.reason}
    if exc.expected_key is not None:
        error["expected_key"] = exc.expected_key
    return problem(400, "Invalid input", str(exc), "invalid-input", errors=[error])


def _range_error(exc: patients_errors.InvalidRange) -> ValidationError:
    # InvalidRange has no mapping in api.problems; without this it would be a 500.
    return ValidationError({"range": [str(exc)]})


def _with_etag(response: Response, patient: Patient) -> Response:
    response["ETag"] = etag(ETAG_PREFIX, patient.version)
    return response


# --- views -------------------------------------------------------------------------------


class PatientListView(IdempotentPostMixin, ListAPIView[Patient]):
    serializer_class = PatientSerializer
    pagination_class = PatientCursor

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Patient.objects.none()
        return visible_patients(self.request.user).annotate(
            current_risk_rank=patient_risk_rank_subquery("pk")
        )

    @extend_schema(
        summary="List patients",
        description="The patients the caller may see (care team or own record), by name.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_rows_read(
            request,
            resource_type="Patient",
            rows=[(patient.pk, patient.pk) for patient in page_rows(self)],
            detail=query_detail(request, "page_size"),
        )
        return response

    @extend_schema(
        request=PatientWriteSerializer,
        summary="Register a patient",
        responses={
            201: PatientSerializer,
            400: OpenApiResponse(description="Invalid fields (an INS key mismatch names it)"),
            403: OpenApiResponse(description="The caller may not register patients"),
            409: OpenApiResponse(description="The INS already belongs to another patient"),
        },
        parameters=[
            etag_header(201),
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                response=[201],
                description="The new patient",
            ),
        ],
        description=(
            "Register a patient; for coordinators and platforms whose token holds "
            "patients:write (403 otherwise). A platform that registers a patient joins its "
            "care team in the role `platform`, a care coordinator in the role `coordinator`, "
            "so that they can read it back and set the rest of the care team. Anyone else who "
            "registers one is NOT added: until someone adds them to the care team, this "
            "response is the only copy they get."
        ),
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm("patients.add_patient"):
            raise PermissionDenied(
                _("creating patients needs %(perm)s") % {"perm": "patients.add_patient"}
            )
        data = PatientWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                patient = patient_create(
                    **data.validated_data,
                    actor=_actor(request),
                    entry_point=AuditEvent.EntryPoint.REST,
                    client_address=client_address(request),
                )
                registrar_joins_care_team(patient=patient, user=_actor(request))
        except patients_errors.InvalidIdentifier as exc:
            return _invalid_identifier(exc)
        response = Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)
        response["Location"] = f"{request.path}{patient.pk}/"
        return _with_etag(response, patient)


class PatientDetailView(APIView):
    @extend_schema(
        responses=PatientSerializer,
        parameters=[etag_header(200)],
        summary="Read a patient",
        description=(
            "One patient's record, with the ETag (its version) to send as If-Match when "
            "changing it. For the care team and the patient's own account; 404 for anyone "
            "else, as for a patient that does not exist."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        patient = access_patient(user=request.user, patient_id=pk)
        audit_read(request, resource_type="Patient", resource_id=pk, patient_id=pk)
        return _with_etag(Response(PatientSerializer(patient).data), patient)

    @extend_schema(
        request=PatientWriteSerializer(partial=True),
        responses={
            200: PatientSerializer,
            412: OpenApiResponse(description="If-Match does not match the current ETag"),
            428: OpenApiResponse(description="If-Match missing"),
        },
        parameters=[
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=True),
            etag_header(200),
        ],
        summary="Change a patient's record",
        description=(
            "Change some fields (the others are kept). If-Match with the patient's ETag is "
            "required: 428 precondition-required without it, 412 precondition-failed if the "
            "record changed since. For the care team members allowed to change the record "
            "(404 for anyone else)."
        ),
    )
    def patch(self, request: Request, pk: int) -> Response:
        patient = access_patient(user=request.user, patient_id=pk, perm="change_patient")
        data = PatientWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        version = expected_version(request, ETAG_PREFIX)
        if version is None:
            raise PreconditionRequired()
        try:
            updated = patient_update(
                patient=patient,
                expected_version=version,
                changes=cast(PatientChanges, dict(data.validated_data)),
                actor=_actor(request),
                entry_point=AuditEvent.EntryPoint.REST,
                client_address=client_address(request),
            )
        except patients_errors.InvalidIdentifier as exc:
            return _invalid_identifier(exc)
        except patients_errors.Conflict as exc:
            if exc.expected is not None:
                raise PreconditionFailed(str(exc)) from None
            raise
        return _with_etag(Response(PatientSerializer(updated).data), updated)


class ConsentCursor(Cursor):
    ordering = ("-recorded_at", "-id")


class ConsentListView(IdempotentPostMixin, ListAPIView[Consent]):
    serializer_class = ConsentSerializer
    pagination_class = ConsentCursor

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Consent.objects.none()
        access_patient(user=self.request.user, patient_id=self.kwargs["pk"])
        return consent_list(patient_id=self.kwargs["pk"])

    @extend_schema(
        summary="List a patient's consents",
        description=(
            "Every consent recorded for the patient (care_team_sharing, external_sharing, "
            "remote_monitoring), given or withdrawn, newest first. For whoever may see the "
            "patient; 404 otherwise."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        pk = kwargs["pk"]
        audit_read(request, resource_type="Consent", action=AuditEvent.Action.SEARCH, patient_id=pk)
        return response

    @extend_schema(
        request=ConsentSetSerializer,
        summary="Give or withdraw a consent",
        responses={
            201: ConsentSerializer,
            200: ConsentSerializer,
            409: OpenApiResponse(description="Already active / nothing active to withdraw"),
        },
        description=(
            "Record (given=true, 201) or withdraw (given=false, 200) a consent; access is "
            "re-synchronised at once: withdrawing care_team_sharing revokes the care team's "
            "access, the caller's included. For the care team members allowed to change the "
            "patient's record, and the patient's own account."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        patient = _patient_for_write(request, pk)
        data = ConsentSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scope, given = data.validated_data["scope"], data.validated_data["given"]
        # No active consent of the scope to withdraw is a conflict (409), mapped by api.problems.
        consent_set(
            patient=patient,
            scope=scope,
            given=given,
            actor=_actor(request),
            entry_point=AuditEvent.EntryPoint.REST,
            note=data.validated_data["note"],
        )
        # The caller may just have lost access (withdrawn sharing): read by the checked id.
        consent = consent_list(patient_id=pk).filter(scope=scope).first()
        code = status.HTTP_201_CREATED if given else status.HTTP_200_OK
        return Response(ConsentSerializer(consent).data, status=code)


OBSERVATION_POST = PolymorphicProxySerializer(
    component_name="ObservationPost",
    serializers=[ObservationInSerializer, ObservationBatchInSerializer],
    resource_type_field_name=None,
)
OBSERVATION_CREATED = PolymorphicProxySerializer(
    component_name="ObservationCreated",
    serializers=[ObservationSerializer, ObservationBatchSerializer],
    resource_type_field_name=None,
)


class ObservationListView(IdempotentPostMixin, ListAPIView[Observation]):
    serializer_class = ObservationSerializer
    pagination_class = ObservationCursor
    audit_detail: dict[str, object]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Observation.objects.none()
        pk = self.kwargs["pk"]
        access_patient(user=self.request.user, patient_id=pk)
        until = _moment(self.request, "until", required=False) or timezone.now()
        since = _moment(self.request, "since", required=False) or until - DEFAULT_OBSERVATION_RANGE
        code = self.request.query_params.get("code") or None
        self.audit_detail = {"since": since.isoformat(), "until": until.isoformat()}
        try:
            return observation_list(patient_id=pk, since=since, until=until, code=code)
        except patients_errors.InvalidRange as exc:
            raise _range_error(exc) from None

    @extend_schema(
        parameters=[
            OpenApiParameter("code", str, description="LOINC code"),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Default: `until` - 30 days"
            ),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Default: now"),
        ],
        summary="List a patient's observations",
        description=(
            f"Observations taken in [since, until), oldest first; at most "
            f"{MAX_LIST_RANGE.days} days. Dates are midnight, server time zone. For whoever "
            "may see the patient; 404 otherwise."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_read(
            request,
            resource_type="Observation",
            action=AuditEvent.Action.SEARCH,
            patient_id=kwargs["pk"],
            detail={**self.audit_detail, "code": request.query_params.get("code", "")[:64]},
        )
        return response

    @extend_schema(
        request=OBSERVATION_POST,
        summary="Record observations",
        responses={
            201: OBSERVATION_CREATED,
            400: OpenApiResponse(description="Every problem of every item (items.3.unit)"),
            409: OpenApiResponse(
                description="Problem type `consent-withdrawn` (fields `scope`, `withdrawn_at`): "
                "the patient withdrew `remote_monitoring`; remote readings (source device, "
                "patient or platform) are refused and nothing is stored until they consent "
                "again. Readings with source `professional` are still accepted."
            ),
        },
        description=(
            f"One observation, or {{items: [...]}} with up to {MAX_BATCH}: all stored or none. "
            "source defaults to platform for OAuth clients, patient for the patient's own "
            "account, professional otherwise. For the care team members allowed to change the "
            "patient's record, and the patient's own account (404 for anyone else)."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        patient = _patient_for_write(request, pk)
        body = request.data
        if not isinstance(body, Mapping):
            raise ValidationError({"(body)": [_("an observation object or {items: [...]}")]})
        _refuse_unknown_observation_fields(body)
        fields = dict(body)
        source = fields.pop("source", None) or self._default_source(request, patient)
        if not isinstance(source, str):
            raise ValidationError({"source": [_("must be text")]})
        common: dict[str, Any] = {
            "patient": patient,
            "actor": _actor(request),
            "source": source,
            "entry_point": AuditEvent.EntryPoint.REST,
            "client_address": client_address(request),
        }
        if "items" in fields:
            items = fields.pop("items")
            if not isinstance(items, list):
                raise ValidationError({"items": [_("must be a list of observations")]})
            stored = observations_ingest(observations=items, **common).observations
            out = {"count": len(stored), "items": ObservationSerializer(stored, many=True).data}
            return Response(out, status=status.HTTP_201_CREATED)
        observation = observations_ingest(observations=fields, **common).observations[0]
        return Response(ObservationSerializer(observation).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _default_source(request: Request, patient: Patient) -> str:
        if isinstance(request.successful_authenticator, OAuth2Authentication):
            return Observation.Source.PLATFORM
        if patient.user_id is not None and patient.user_id == request.user.pk:
            return Observation.Source.PATIENT
        return Observation.Source.PROFESSIONAL


class AuditEventListView(ListAPIView[AuditEvent]):
    serializer_class = AuditEventSerializer
    pagination_class = AuditCursor
    audit_detail: dict[str, object]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditEvent.objects.none()
        pk = self.kwargs["pk"]
        access_patient(user=self.request.user, patient_id=pk)
        since = _moment(self.request, "since", required=True)
        until = _moment(self.request, "until", required=True)
        assert since is not None
        assert until is not None
        self.audit_detail = {"since": since.isoformat(), "until": until.isoformat()}
        try:
            return audit_events_for_patient(pk, since, until)
        except patients_errors.InvalidRange as exc:
            raise _range_error(exc) from None

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, required=True),
            OpenApiParameter("until", OpenApiTypes.DATETIME, required=True),
        ],
        summary="Read a patient's audit trail",
        description=(
            f"Who did what with the patient's data in [since, until), at most "
            f"{MAX_AUDIT_RANGE.days} days, in chain order. For whoever may see the patient; 404 "
            "otherwise."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The page is evaluated before this read is recorded: it does not list itself.
        response = super().get(request, *args, **kwargs)
        audit_read(
            request,
            resource_type="AuditEvent",
            action=AuditEvent.Action.SEARCH,
            patient_id=kwargs["pk"],
            detail=self.audit_detail,
        )
        return response


urlpatterns: list[URLPattern] = [
    path("patients/", PatientListView.as_view(), name="patients"),
    path("patients/<int:pk>/", PatientDetailView.as_view(), name="patient-detail"),
    path("patients/<int:pk>/consents/", ConsentListView.as_view(), name="patient-consents"),
    path(
        "patients/<int:pk>/observations/",
        ObservationListView.as_view(),
        name="patient-observations",
    ),
    path(
        "patients/<int:pk>/audit-events/",
        AuditEventListView.as_view(),
        name="patient-audit-events",
    ),
]
