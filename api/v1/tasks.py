"""Tasks: worklists and one endpoint per action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import (
    audit_read,
    audit_rows_read,
    client_address,
    page_rows,
    patient_id_param,
    query_detail,
)
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.preconditions import PreconditionFailed, etag, expected_version
from api.schema import IF_MATCH, etag_header
from api.serializers import StrictSerializer
from coordination import task_states
from coordination.models import RiskBand, Task, risk_of_rank
from coordination.selectors import (
    WORKLIST_ORDER,
    access_task,
    tasks_for_patient,
    visible_tasks,
    worklist_mine,
    worklist_overdue,
    worklist_unclaimed,
)
from coordination.services import TaskActionInput, task_act
from coordination.task_states import ACTIONS
from core.errors import Conflict
from patients.models import AuditEvent

ETAG_PREFIX = "v"
_STAMP = serializers.DateTimeField()  # DRF's rendering of a time (ISO 8601, local zone)


class TaskSerializer(serializers.ModelSerializer[Task]):
    owner = serializers.IntegerField(source="owner_id", allow_null=True, read_only=True)
    offered_team = serializers.IntegerField(
        source="offered_team_id", allow_null=True, read_only=True
    )
    care_pathway = serializers.IntegerField(
        source="care_pathway_id", allow_null=True, read_only=True
    )
    title = serializers.JSONField(read_only=True)
    risk_band = serializers.SerializerMethodField(
        help_text="While the task is open: the patient's current triage band (the highest "
        "over their active pathways), the worklists' first ordering key. Null once closed."
    )
    risk_score = serializers.SerializerMethodField(
        help_text="While the task is open: the score that goes with `risk_band`. Null once closed."
    )

    class Meta:
        model = Task
        fields = [
            "id", "care_pathway", "patient", "code", "title", "status", "priority", "due_at",
            "owner", "offered_role", "offered_team", "for_patient", "pathway_state", "note",
            "output", "version", "created_at", "updated_at", "ended_at", "risk_band",
            "risk_score",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=RiskBand.choices, allow_null=True))
    def get_risk_band(self, obj: Task) -> str | None:
        return _risk(obj)[0]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_risk_score(self, obj: Task) -> int | None:
        return _risk(obj)[1]

    def to_representation(self, instance: Task) -> dict[str, Any]:
        """The fields above, read straight off the row: a worklist page serializes up to 200
        tasks, and DRF's field-by-field walk costs more than the query. Same output as the
        declared fields give (tests/api pin it against ModelSerializer's own)."""
        stamp = _STAMP.to_representation
        return {
            "id": instance.pk,
            "care_pathway": instance.care_pathway_id,
            "patient": instance.patient_id,
            "code": instance.code,
            "title": instance.title,
            "status": instance.status,
            "priority": instance.priority,
            "due_at": stamp(instance.due_at) if instance.due_at is not None else None,
            "owner": instance.owner_id,
            "offered_role": instance.offered_role,
            "offered_team": instance.offered_team_id,
            "for_patient": instance.for_patient,
            "pathway_state": instance.pathway_state,
            "note": instance.note,
            "output": instance.output,
            "version": instance.version,
            "created_at": stamp(instance.created_at),
            "updated_at": stamp(instance.updated_at),
            "ended_at": stamp(instance.ended_at) if instance.ended_at is not None else None,
            "risk_band": (risk := _risk(instance))[0],
            "risk_score": risk[1],
        }


def _risk(task: Task) -> tuple[str | None, int | None]:
    """The patient's (band, score) kept on an open task; (None, None) on a closed one, whose
    rank stopped following the patient when it closed."""
    if task.status not in task_states.OPEN:
        return None, None
    return risk_of_rank(task.risk_rank)


class TaskActionSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    output = serializers.DictField(required=False, default=dict)
    new_owner = serializers.IntegerField(required=False, min_value=1)


class WorklistPagination(Cursor):
    """Most pressing first (the patient's risk band and score, priority, due time); the
    page's keys are read through the open-task index (coordination.models.Task:
    task_open_worklist) before its rows."""

    ordering = WORKLIST_ORDER
    keys_first = True


VIEWS: dict[str, Callable[[Any], QuerySet[Task]]] = {
    "mine": worklist_mine,
    "unclaimed": worklist_unclaimed,
    "overdue": worklist_overdue,
}


class TaskListView(ListAPIView[Task]):
    serializer_class = TaskSerializer
    pagination_class = WorklistPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "view",
                str,
                enum=["all", *VIEWS],
                description="mine (claimed by the caller), unclaimed (on offer to the caller's "
                "roles), overdue, or all the caller may see (default).",
            ),
            OpenApiParameter("patient", int, description="Only this patient's tasks."),
            OpenApiParameter("status", str, description="Only tasks in this status."),
        ],
        summary="List tasks (worklists)",
        description="The caller's tasks, most pressing first: the patient's risk band (high "
        "first) and score (highest first), then priority (stat, asap, urgent, routine), then "
        "due time (earliest first, none last), then id. For members of care teams; anyone "
        "else gets an empty list.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        # One record per patient whose tasks the page holds, and one for the patient
        # searched (?patient=) if it holds none of its tasks (refused or empty).
        audit_rows_read(
            request,
            resource_type="Task",
            rows=[(task.patient_id, task.pk) for task in page_rows(self)],
            searched_patient_id=patient_id_param(request.query_params.get("patient")),
            detail=query_detail(request, "view", "patient", "status"),
        )
        return response

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Task.objects.none()
        params = self.request.query_params
        view = params.get("view", "all")
        user = self.request.user
        if view != "all" and view not in VIEWS:
            names = ", ".join(["all", *VIEWS])
            raise ValidationError({"view": [_("one of %(names)s") % {"names": names}]})
        patient = params.get("patient")
        if patient is not None and not patient.isdigit():
            raise ValidationError({"patient": [_("a patient id")]})
        # The serializer reads only the related rows' ids: no joins.
        rows = (VIEWS[view](user) if view in VIEWS else visible_tasks(user)).select_related(None)
        if patient is not None:
            # An id beyond the keys' range is no patient's (and SQLite refuses it in a query).
            key = patient_id_param(patient)
            tasks = tasks_for_patient(user, key) if key is not None else Task.objects.none()
            rows = rows.filter(pk__in=tasks.values("pk"))
        if (status := params.get("status")) is not None:
            rows = rows.filter(status=status)
        return rows


class TaskDetailView(APIView):
    @extend_schema(
        responses=TaskSerializer,
        parameters=[etag_header(200)],
        summary="Read a task",
        description=(
            "One task: its status, owner, priority, due time and its patient's triage. The "
            "ETag is the task's version, for If-Match on its actions. 404 for a task the "
            "caller may not see."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        task = access_task(user=request.user, task_id=pk)
        audit_read(request, resource_type="Task", resource_id=pk, patient_id=task.patient_id)
        response = Response(TaskSerializer(task).data)
        response["ETag"] = etag(ETAG_PREFIX, task.version)
        return response


class TaskActionView(IdempotentPostMixin, APIView):
    action_name = ""

    @extend_schema(
        request=TaskActionSerializer,
        responses=TaskSerializer,
        parameters=[IF_MATCH, etag_header(200)],
    )
    def post(self, request: Request, pk: int) -> Response:
        data = TaskActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = expected_version(request, ETAG_PREFIX)
        try:
            task = task_act(
                task_id=pk,
                user=request.user,  # type: ignore[arg-type]
                data=TaskActionInput(
                    action=self.action_name,
                    expected_version=version,
                    note=data.validated_data["note"],
                    output=data.validated_data["output"],
                    new_owner_id=data.validated_data.get("new_owner"),
                ),
                entry_point=AuditEvent.EntryPoint.REST,
                client_address=client_address(request),
            )
        except Conflict as exc:
            if version is not None and exc.current_version is not None:
                raise PreconditionFailed(str(exc)) from None
            raise
        response = Response(TaskSerializer(task).data)
        response["ETag"] = etag(ETAG_PREFIX, task.version)
        return response


ACTION_DOCS = {
    "claim": ("Claim a task", "Take a task on offer to your roles: it becomes yours."),
    "release": ("Release a task", "Give back a task you claimed: it is on offer again."),
    "start": ("Start a task", "Start working on the task (in-progress)."),
    "hold": ("Put a task on hold", "Pause the task (on-hold), with a note saying why."),
    "resume": ("Resume a task", "Take a task on hold back up (in-progress)."),
    "complete": (
        "Complete a task",
        "Finish the task (completed), with its output if the pathway asks for one; the "
        "pathway may move on.",
    ),
    "fail": ("Fail a task", "Record that the task could not be done (failed), with a note."),
    "cancel": ("Cancel a task", "The task is no longer needed (cancelled)."),
    "reassign": (
        "Reassign a task",
        "Give the task to another member of the care team (new_owner, a user id).",
    ),
}
ACTION_NOTE = (
    " For the members of the patient's care team the task is offered to; once claimed, its "
    "owner (a coordinator may also reassign or cancel it): 403 not-allowed for anyone else who "
    "sees it. If-Match with the task's ETag makes it conditional: 412 precondition-failed if "
    "the task changed since. An action that no longer applies to the task is a 409 conflict "
    "saying why."
)

ACTION_VIEWS: dict[str, type[TaskActionView]] = {
    name: extend_schema_view(
        post=extend_schema(
            summary=ACTION_DOCS[name][0], description=ACTION_DOCS[name][1] + ACTION_NOTE
        )
    )(type(f"Task{name.title()}View", (TaskActionView,), {"action_name": name}))
    for name in ACTIONS
}
