"""Recording observations (device data, self-measurements, professional readings).

Every item is validated against `patients.measurements` before anything is written:
- `code` is a known LOINC code, `unit` one of its UCUM units (the problem names the allowed
  ones, and the code to use for a unit that belongs to another, such as glucose in mmol/L),
  `value` a finite number within the plausible range for that unit (stored with four
  decimals, rounded half to even), a whole one for a category recorded as a number;
- `effective_at` is timezone-aware and at most five minutes in the future (clock skew of the
  device or phone that took it);
- `device_id`, when given, is a device registered to this patient.
Remote readings (sources `device`, `patient`, `platform`) of a patient who withdrew their
`remote_monitoring` consent are refused with ConsentWithdrawn before anything else is looked
at; readings a professional took (`professional`, in person) are care, not remote
monitoring, and are still recorded. A patient never asked keeps being monitored.
A batch is all or nothing: if any item is invalid, InvalidObservation lists every problem of
every item (`items.3.unit: ...`) and nothing is stored. A valid batch is stored with one
bulk insert and one audit record, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.errors import ConsentWithdrawn, InvalidObservation, Problem
from patients.measurements import MEASUREMENTS
from patients.models import AuditEvent, Consent, Device, Observation, Patient
from patients.selectors import consent_withdrawn_since
from patients.services.audit import audit_record

MAX_BATCH = 1000
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_IDS_TEXT = 2048
_FOUR_PLACES = Decimal("0.0001")
_TOO_LARGE = Decimal(10) ** 8  # the column holds 8 digits before the decimal point


@dataclass(frozen=True)
class ObservationItem:
    """One measurement to record. Mappings with the same keys are accepted too (a parsed
    JSON body), so that type errors are reported with the other problems."""

    code: str
    value: Decimal | int | float | str
    unit: str
    effective_at: dt.datetime | str
    device_id: int | None = None


_ITEM_FIELDS = tuple(f.name for f in fields(ObservationItem))
_REQUIRED = ("code", "value", "unit", "effective_at")


def observations_record(
    *,
    patient: Patient,
    items: Sequence[ObservationItem | Mapping[str, Any]],
    actor: AbstractBaseUser | None,
    source: str,
    entry_point: str,
    purpose: str = AuditEvent.Purpose.TREATMENT,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> list[Observation]:
    """Validate every item and store them all, or none (InvalidObservation; ConsentWithdrawn
    for remote readings while `remote_monitoring` is withdrawn). Returns the stored
    observations in item order."""
    now = now or timezone.now()
    _monitoring_check(patient, source)
    problems = _source_problems(patient, actor, source)
    if not items:
        problems.append(Problem("items", _("no observations given")))
    elif len(items) > MAX_BATCH:
        problems.append(
            Problem(
                "items",
                _("%(count)d observations; at most %(n)d") % {"count": len(items), "n": MAX_BATCH},
            )
        )
    if problems:
        raise InvalidObservation(problems)
    observations = _validate(patient, items, [f"items.{i}." for i in range(len(items))], now)
    return _store(patient, observations, actor, source, entry_point, purpose, client_address)


def observation_record(
    *,
    patient: Patient,
    item: ObservationItem | Mapping[str, Any],
    actor: AbstractBaseUser | None,
    source: str,
    entry_point: str,
    purpose: str = AuditEvent.Purpose.TREATMENT,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Observation:
    """Record one observation; problems are located by field name alone (`unit: ...`)."""
    now = now or timezone.now()
    _monitoring_check(patient, source)
    if problems := _source_problems(patient, actor, source):
        raise InvalidObservation(problems)
    observations = _validate(patient, [item], [""], now)
    return _store(patient, observations, actor, source, entry_point, purpose, client_address)[0]


# What a patient's own account may say its readings are: measured by the patient or sent by
# their device, never taken by a professional or relayed by a platform.
PATIENT_SOURCES = (Observation.Source.PATIENT, Observation.Source.DEVICE)


# Readings that are remote monitoring, which a withdrawn `remote_monitoring` consent stops.
REMOTE_SOURCES = frozenset(
    {Observation.Source.DEVICE, Observation.Source.PATIENT, Observation.Source.PLATFORM}
)


def _monitoring_check(patient: Patient, source: str) -> None:
    """ConsentWithdrawn if `source` is remote and the patient withdrew remote monitoring (one
    query: a batch of readings pays it once)."""
    if source not in REMOTE_SOURCES:
        return
    scope = Consent.Scope.REMOTE_MONITORING
    since = consent_withdrawn_since(patient_id=patient.pk, scope=scope)
    if since is not None:
        raise ConsentWithdrawn(patient_id=patient.pk, scope=scope, since=since)


def _source_problems(
    patient: Patient, actor: AbstractBaseUser | None, source: str
) -> list[Problem]:
    if source not in Observation.Source.values:
        allowed = ", ".join(Observation.Source.values)
        return [
            Problem(
                "source",
                _("%(value)s is not one of %(allowed)s")
                % {"value": repr(source), "allowed": allowed},
            )
        ]
    own = actor is not None and patient.user_id is not None and patient.user_id == actor.pk
    if own and source not in PATIENT_SOURCES:
        allowed = _(" or ").join(repr(str(s)) for s in PATIENT_SOURCES)
        return [
            Problem(
                "source",
                _("a patient's own readings are %(allowed)s, not %(value)s")
                % {"allowed": allowed, "value": repr(source)},
            )
        ]
    return []


def _store(
    patient: Patient,
    observations: list[Observation],
    actor: AbstractBaseUser | None,
    source: str,
    entry_point: str,
    purpose: str,
    client_address: str | None,
) -> list[Observation]:
    for observation in observations:
        observation.source = source
        observation.recorded_by_id = actor.pk if actor is not None else None
    with transaction.atomic():
        stored = Observation.objects.bulk_create(observations)
        ids = compact_ids([o.pk for o in stored])
        if len(ids) > MAX_IDS_TEXT:  # ids interleaved with concurrent batches: keep the span
            ids = f"{min(o.pk for o in stored)}-{max(o.pk for o in stored)} (with gaps)"
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            resource_type="Observation",
            resource_id=stored[0].pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={
                "count": len(stored),
                "ids": ids,
                "codes": sorted({o.code for o in stored}),
            },
        )
    return stored


def compact_ids(ids: Sequence[int]) -> str:
    """`[4, 5, 6, 9]` -> `"4-6,9"`: the ids of a batch, short enough for an audit record."""
    runs: list[list[int]] = []
    for pk in sorted(ids):
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _validate(
    patient: Patient,
    items: Sequence[ObservationItem | Mapping[str, Any]],
    prefixes: Sequence[str],
    now: dt.datetime,
) -> list[Observation]:
    raw_items = [_as_mapping(item) for item in items]
    wanted_devices = {
        device_id
        for raw in raw_items
        if isinstance(raw, Mapping)
        and isinstance(device_id := raw.get("device_id"), int)
        and not isinstance(device_id, bool)
    }
    known_devices = (
        set(
            Device.objects.filter(patient_id=patient.pk, pk__in=wanted_devices).values_list(
                "pk", flat=True
            )
        )
        if wanted_devices
        else set()
    )
    problems: list[Problem] = []
    observations: list[Observation] = []
    for raw, prefix in zip(raw_items, prefixes, strict=True):
        found, observation = _validate_item(raw, prefix, now, known_devices)
        problems.extend(found)
        if observation is not None:
            observation.patient_id = patient.pk
            observation.received_at = now
            observations.append(observation)
    if problems:
        raise InvalidObservation(problems)
    return observations


def _as_mapping(item: object) -> object:
    """Items arrive typed from Python callers and untyped from parsed JSON: check both."""
    if isinstance(item, ObservationItem):
        return {name: getattr(item, name) for name in _ITEM_FIELDS}
    return item


def _validate_item(
    raw: object, prefix: str, now: dt.datetime, known_devices: set[int]
) -> tuple[list[Problem], Observation | None]:
    if not isinstance(raw, Mapping):
        return [Problem(prefix.rstrip(".") or "item", _("must be an object"))], None
    problems = [
        Problem(f"{prefix}{name}", _("unknown field")) for name in raw if name not in _ITEM_FIELDS
    ]
    problems += [Problem(f"{prefix}{name}", _("required")) for name in _REQUIRED if name not in raw]

    code, unit = raw.get("code"), raw.get("unit")
    measurement = MEASUREMENTS.get(code) if isinstance(code, str) else None
    if "code" in raw and measurement is None:
        known = ", ".join(sorted(MEASUREMENTS))
        problems.append(
            Problem(
                f"{prefix}code",
                _("unknown LOINC code %(code)s; known: %(known)s")
                % {"code": repr(code), "known": known},
            )
        )
    unit_range = measurement.unit(unit) if measurement and isinstance(unit, str) else None
    if measurement is not None and "unit" in raw and unit_range is None:
        allowed = ", ".join(measurement.unit_names)
        wrong_unit = (
            f"{unit!r} is not a unit of {measurement.code} ({measurement.display}); "
            f"allowed: {allowed}"
        )
        retired = measurement.stored_unit(unit) if isinstance(unit, str) else None
        if retired is not None and retired.recorded_as is not None:
            elsewhere = MEASUREMENTS[retired.recorded_as]
            wrong_unit += (
                f". A reading in {unit} is recorded as {elsewhere.code} ({elsewhere.display})"
            )
        problems.append(Problem(f"{prefix}unit", wrong_unit))

    value: Decimal | None = None
    if "value" in raw:
        value, message = _decimal(raw["value"])
        if message:
            problems.append(Problem(f"{prefix}value", message))
        elif (
            measurement is not None
            and unit_range is not None
            and value is not None
            and not unit_range.minimum <= value <= unit_range.maximum
        ):
            problems.append(
                Problem(
                    f"{prefix}value",
                    f"{_plain(value)} {unit_range.unit} is outside the plausible range for "
                    f"{measurement.display} ({_plain(unit_range.minimum)} to "
                    f"{_plain(unit_range.maximum)} {unit_range.unit})",
                )
            )
        elif (
            measurement is not None
            and unit_range is not None
            and unit_range.whole
            and value is not None
            and value != value.to_integral_value()
        ):
            problems.append(
                Problem(
                    f"{prefix}value",
                    f"{_plain(value)} is not a whole number; {measurement.display} "
                    f"takes whole numbers only",
                )
            )

    effective: dt.datetime | None = None
    if "effective_at" in raw:
        effective, message = _moment(raw["effective_at"], now)
        if message:
            problems.append(Problem(f"{prefix}effective_at", message))

    device_id = raw.get("device_id")
    if device_id is not None and (
        isinstance(device_id, bool)
        or not isinstance(device_id, int)
        or device_id not in known_devices
    ):
        problems.append(
            Problem(
                f"{prefix}device_id",
                _("%(device)s is not a device of this patient") % {"device": repr(device_id)},
            )
        )

    if problems:
        return problems, None
    assert isinstance(code, str)
    assert isinstance(unit, str)
    assert value is not None
    assert effective is not None
    return [], Observation(
        code=code, value=value, unit=unit, effective_at=effective, device_id=device_id
    )


def _decimal(raw: object) -> tuple[Decimal | None, str]:
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | float | str):
        return None, f"{raw!r} is not a number"
    try:
        value = Decimal(repr(raw) if isinstance(raw, float) else str(raw).strip())
    except InvalidOperation:
        return None, f"{raw!r} is not a number"
    if not value.is_finite():
        return None, f"{raw!r} is not a finite number"
    if abs(value) >= _TOO_LARGE:
        return None, f"{raw!r} is far too large"
    return value.quantize(_FOUR_PLACES, rounding=ROUND_HALF_EVEN), ""


def _moment(raw: object, now: dt.datetime) -> tuple[dt.datetime | None, str]:
    if isinstance(raw, str):
        try:
            raw = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            return None, f"{raw!r} is not an ISO-8601 date and time"
    if not isinstance(raw, dt.datetime):
        return None, f"{raw!r} is not a date and time"
    if raw.tzinfo is None or raw.utcoffset() is None:
        return None, "must be timezone-aware (give an offset such as +01:00 or Z)"
    if raw > now + CLOCK_SKEW:
        return None, (
            f"{raw.isoformat()} is in the future (at most {int(CLOCK_SKEW.total_seconds() // 60)}"
            f" minutes ahead of the server clock, {now.isoformat()}, are accepted)"
        )
    return raw, ""


def _plain(value: Decimal) -> str:
    """`Decimal("900.0000")` -> `900`, `Decimal("0.2")` -> `0.2`."""
    return format(value.normalize(), "f")
