"""Per-patient parameters of a care pathway: the settings a definition declares under
`monitoring.parameters` (with a default and bounds), which alert and score conditions read
as `params.<name>`. A care-team member with one of the parameter's roles sets one for a
patient (a COPD patient's `spo2_floor` at 88 % where the pathway says 90) without a new
version of the pathway.

History is append-only (coordination.models.PathwayParameter): the current value of a name is
its latest row, the definition's default when it has none. A stored value outside the bounds
of the definition the instance now runs (after a migration to a version that narrowed them)
is read as the nearest bound.

Locks (`parameter_set`): the pathway's engine instance (`lock_instance`), first, as every
pathway service and the alert engine take it; nothing else (the history row, the outbox
event and the audit record are inserts).
Holding the instance lock orders a change of a parameter with the evaluation of the pathway's
alerts, which read the parameters under the same lock, and with any other change of it: the
`previous_value` a row records is the value the alerts were using.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from coordination.errors import Conflict, InvalidInput, NotAllowed, Problem
from coordination.models import CarePathway, PathwayParameter
from coordination.selectors import access_care_pathway
from core.users import User
from directory.selectors import PATIENT_ROLE, PLATFORM_ROLE, care_roles
from live import events
from live.services.outbox import event_record
from patients.models import AuditEvent
from patients.services import audit_record
from workflows.definition.compiled import CompiledDefinition, ParameterSpec, Text
from workflows.models import PathwayInstance
from workflows.selectors import instance_definition, lock_instance

MAX_REASON = 500
# What the column holds: 12 digits, 4 after the point.
DECIMAL_PLACES = 4
MAX_MAGNITUDE = Decimal(10) ** (12 - DECIMAL_PLACES)
ENDED = frozenset({PathwayInstance.Status.COMPLETED, PathwayInstance.Status.CANCELLED})
# Roles that never set a parameter unless the parameter names them: the patient, and a
# platform's service account.
NOT_CARE_ROLES = frozenset({PATIENT_ROLE, PLATFORM_ROLE})


@dataclass(frozen=True)
class ParameterValue:
    """A declared parameter of a pathway and its current value for the patient."""

    name: str
    title: Text | None
    description: Text | None
    unit: str | None
    default: float
    minimum: float
    maximum: float
    roles: tuple[str, ...]  # who may set it (empty: any professional of the care team)
    value: float
    is_default: bool
    set_by: str  # who set the current value ("" for the default)
    set_at: dt.datetime | None
    reason: str
    may_set: bool  # whether the user asking may set it


# --- reads ---------------------------------------------------------------------------------


def _latest(care_pathway_id: int, names: Collection[str]) -> QuerySet[PathwayParameter]:
    """The latest row of each of `names` on the pathway, in one statement: rows whose id is
    the highest of their name (the index `pathway_parameter_latest` answers the subquery)."""
    mine = PathwayParameter.objects.filter(care_pathway_id=care_pathway_id, name__in=names)
    latest_ids = mine.order_by().values("name").annotate(latest=Max("pk")).values("latest")
    return mine.filter(pk__in=latest_ids)


def _clamped(spec: ParameterSpec, value: Decimal | float) -> float:
    return min(max(float(value), spec.minimum), spec.maximum)


def parameter_values(*, care_pathway_id: int, definition: CompiledDefinition) -> dict[str, float]:
    """What alert and score conditions read as `params`: every parameter `definition`
    declares, at its latest value on the pathway or its default. One query (none when the
    definition declares no parameter). The caller has read the pathway (no access check)."""
    specs = definition.monitoring.parameters
    values = {name: spec.default for name, spec in specs.items()}
    if not specs:
        return values
    rows = _latest(care_pathway_id, list(specs)).values_list("name", "value")
    for name, value in rows:
        values[name] = _clamped(specs[name], value)
    return values


def parameter_values_many(
    pathways: Sequence[tuple[int, CompiledDefinition]],
) -> dict[int, dict[str, float]]:
    """`parameter_values` of several pathways (care pathway id, its definition) in one query:
    a page that shows many patients' thresholds reads them at once."""
    found = {
        pk: {name: spec.default for name, spec in d.monitoring.parameters.items()}
        for pk, d in pathways
    }
    specs = {pk: d.monitoring.parameters for pk, d in pathways if d.monitoring.parameters}
    if not specs:
        return found
    names = {name for named in specs.values() for name in named}
    rows = PathwayParameter.objects.filter(care_pathway_id__in=specs, name__in=names)
    latest_ids = (
        rows.order_by()
        .values("care_pathway_id", "name")
        .annotate(latest=Max("pk"))
        .values("latest")
    )
    for pathway_id, name, value in rows.filter(pk__in=latest_ids).values_list(
        "care_pathway_id", "name", "value"
    ):
        spec = specs[pathway_id].get(name)
        if spec is not None:
            found[pathway_id][name] = _clamped(spec, value)
    return found


def may_set_parameter(spec: ParameterSpec, roles: Collection[str]) -> bool:
    """Whether someone holding `roles` in the patient's care team may set the parameter: one
    of its `roles`, or, when it names none, any role but the patient's and a platform's."""
    if spec.roles:
        return bool(spec.roles & set(roles))
    return bool(set(roles) - NOT_CARE_ROLES)


def _definition(pathway: CarePathway) -> CompiledDefinition:
    instance = pathway.instance
    assert instance is not None, "a started pathway has its instance"
    return instance_definition(instance)


def pathway_parameters(
    *, pathway: CarePathway, user: User, roles: Collection[str] | None = None
) -> list[ParameterValue]:
    """The parameters the pathway's definition declares, in their declared order, each with
    its current value and who set it, and whether `user` may set it. The caller has checked
    that `user` may see the pathway (`access_care_pathway`, `visible_care_pathways`) and
    records the read. `roles`: the user's care roles for the patient, when the caller has
    them (several pathways of one patient). Two queries at most."""
    specs = _definition(pathway).monitoring.parameters
    if not specs:
        return []
    if roles is None:
        roles = care_roles(user=user, patient_id=pathway.patient_id)
    latest = {row.name: row for row in _latest(pathway.pk, list(specs))}
    shown = []
    for name, spec in specs.items():
        row = latest.get(name)
        shown.append(
            ParameterValue(
                name=name,
                title=spec.title,
                description=spec.description,
                unit=spec.unit,
                default=spec.default,
                minimum=spec.minimum,
                maximum=spec.maximum,
                roles=tuple(sorted(spec.roles)),
                value=_clamped(spec, row.value) if row is not None else spec.default,
                is_default=row is None,
                set_by=row.set_by_label if row is not None else "",
                set_at=row.set_at if row is not None else None,
                reason=row.reason if row is not None else "",
                may_set=may_set_parameter(spec, roles),
            )
        )
    return shown


def parameter_list(*, user: User, care_pathway_id: int) -> tuple[CarePathway, list[ParameterValue]]:
    """The pathway (if `user` may see it: else NotFound, alike for missing and not theirs)
    and its parameters (`pathway_parameters`). The caller records the read."""
    pathway = access_care_pathway(user=user, pathway_id=care_pathway_id)
    return pathway, pathway_parameters(pathway=pathway, user=user)


def parameter_history(
    *, user: User, care_pathway_id: int, name: str | None = None
) -> tuple[CarePathway, QuerySet[PathwayParameter]]:
    """The pathway (NotFound as `parameter_list`) and every setting of its parameters, the
    newest first (of `name` only, when given). The caller records the read."""
    pathway = access_care_pathway(user=user, pathway_id=care_pathway_id)
    return pathway, pathway_parameter_history(pathway=pathway, name=name)


def pathway_parameter_history(
    *, pathway: CarePathway, name: str | None = None
) -> QuerySet[PathwayParameter]:
    """Every setting of the pathway's parameters (of `name` only, when given), the newest
    first. The caller has checked that the user may see the pathway, and records the read."""
    rows = PathwayParameter.objects.filter(care_pathway_id=pathway.pk)
    if name is not None:
        rows = rows.filter(name=name)
    return rows.order_by("-id")


# --- the write -----------------------------------------------------------------------------


def _number(value: float | Decimal) -> str:
    """80.0 -> "80", 2.5 -> "2.5": bounds as a person writes them."""
    return f"{Decimal(str(value)).normalize():f}"


def _bounds(spec: ParameterSpec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    return f"[{_number(spec.minimum)}, {_number(spec.maximum)}]{unit}"


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = (
            Decimal(str(value).strip()) if isinstance(value, str | int | float | Decimal) else None
        )
    except InvalidOperation:
        return None
    if number is None or not number.is_finite():
        return None
    return number


def _value_problems(spec: ParameterSpec, value: object) -> tuple[Decimal | None, list[Problem]]:
    number = _decimal(value)
    if number is None:
        return None, [Problem("value", _("%(value)s is not a number") % {"value": repr(value)})]
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        return None, [Problem("value", _("at most %(n)d decimal places") % {"n": DECIMAL_PLACES})]
    if abs(number) >= MAX_MAGNITUDE or not (
        Decimal(str(spec.minimum)) <= number <= Decimal(str(spec.maximum))
    ):
        return None, [
            Problem(
                "value",
                _("%(value)s is outside the bounds of %(name)s: %(bounds)s")
                % {"value": _number(number), "name": spec.name, "bounds": _bounds(spec)},
            )
        ]
    return number, []


def _reason_problems(reason: object) -> tuple[str, list[Problem]]:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        return "", [Problem("reason", _("required: say why the value changes"))]
    if len(text) > MAX_REASON:
        return "", [Problem("reason", _("at most %(n)d characters") % {"n": MAX_REASON})]
    return text, []


def _unknown(name: str, specs: Iterable[str]) -> InvalidInput:
    declared = ", ".join(sorted(specs)) or "none"
    return InvalidInput(
        [
            Problem(
                "name",
                _("unknown parameter %(name)s (declared by this pathway: %(declared)s)")
                % {"name": repr(name), "declared": declared},
            )
        ]
    )


def _refusal(spec: ParameterSpec) -> NotAllowed:
    if spec.roles:
        listed = ", ".join(sorted(spec.roles))
        return NotAllowed(
            f"only a member of the patient's care team as {listed} may set {spec.name}"
        )
    return NotAllowed(f"only a professional of the patient's care team may set {spec.name}")


def _label(user: User) -> str:
    full = getattr(user, "get_full_name", lambda: "")()
    return str(full or user.get_username())[:150]


def parameter_set(
    *,
    user: User,
    care_pathway_id: int,
    name: str,
    value: object,
    reason: object,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
) -> PathwayParameter:
    """Set parameter `name` of the pathway to `value` for its patient, saying why; returns
    the new history row.

    Refused, writing nothing: NotFound when `user` may not see the pathway (alike for one
    that does not exist; the error names its patient for the audit trail only);
    InvalidInput naming the name and the declared ones for a name the pathway's definition
    does not declare; NotAllowed for a user who does not hold one of the parameter's roles
    in the patient's care team (when it names none: any role but the patient's and a
    platform's); InvalidInput naming the bounds and the unit for a value outside them, and
    for a missing reason; Conflict once the pathway has ended.

    Locks the instance, then writes the row, a `parameter.changed` outbox event and an
    audit record, in one transaction. Setting the current value again is recorded too (a
    confirmation, with its reason)."""
    pathway = access_care_pathway(user=user, pathway_id=care_pathway_id)
    assert pathway.instance_id is not None, "a visible pathway has started"
    with transaction.atomic():
        instance = lock_instance(instance_id=pathway.instance_id)
        specs = instance_definition(instance).monitoring.parameters
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise _unknown(str(name), specs)
        roles = care_roles(user=user, patient_id=pathway.patient_id)
        if not may_set_parameter(spec, roles):
            raise _refusal(spec)
        number, problems = _value_problems(spec, value)
        text, reason_problems = _reason_problems(reason)
        if problems or reason_problems:
            raise InvalidInput([*problems, *reason_problems])
        assert number is not None
        if instance.status in ENDED:
            raise Conflict(
                _("the pathway has ended (%(status)s): its parameters are kept")
                % {"status": instance.status}
            )
        previous = _latest(pathway.pk, [name]).values_list("value", flat=True).first()
        now = timezone.now()
        row = PathwayParameter.objects.create(
            care_pathway_id=pathway.pk,
            name=name,
            value=number,
            previous_value=Decimal(
                str(_clamped(spec, previous) if previous is not None else spec.default)
            ),
            set_by_id=user.pk,
            set_by_label=_label(user),
            set_by_roles=",".join(sorted(roles))[:200],
            set_at=now,
            reason=text,
        )
        event_record(
            type=events.PARAMETER_CHANGED,
            patient=pathway.patient_id,
            payload=events.parameter_payload(pathway_id=pathway.pk, name=name, parameter_id=row.pk),
            occurred_at=now,
        )
        audit_record(
            actor=user,  # type: ignore[arg-type]  # access_care_pathway: authenticated
            action=AuditEvent.Action.UPDATE,
            resource_type="PathwayParameter",
            resource_id=row.pk,
            patient_id=pathway.patient_id,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            client_address=client_address,
            detail={
                "pathway": pathway.pk,
                "name": name,
                "value": _number(number),
                "previous": _number(row.previous_value),
                "reason": text[:200],
            },
            now=now,
            patient_checked=True,
        )
    return row
