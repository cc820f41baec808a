"""Registering and deactivating measuring devices.

An active device's (manufacturer, model, serial) is unique: registering a device that is
active for the same patient returns it unchanged (retries are harmless); for another patient,
it is a Conflict until that registration is deactivated.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.errors import Conflict, InvalidDevice, Problem
from patients.models import AuditEvent, Device, Patient
from patients.services.audit import audit_record


def device_register(
    *,
    patient: Patient,
    kind: str,
    actor: AbstractBaseUser | None,
    entry_point: str,
    manufacturer: str = "",
    model: str = "",
    serial: str = "",
    purpose: str = AuditEvent.Purpose.TREATMENT,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Device:
    """Register a device for the patient (or return the same active registration)."""
    manufacturer, model, serial = (" ".join(v.split()) for v in (manufacturer, model, serial))
    problems: list[Problem] = []
    if kind not in Device.Kind.values:
        problems.append(
            Problem(
                "kind",
                _("%(value)s is not one of %(allowed)s")
                % {"value": repr(kind), "allowed": ", ".join(Device.Kind.values)},
            )
        )
    for name, value in (("manufacturer", manufacturer), ("model", model), ("serial", serial)):
        if len(value) > 100:
            problems.append(Problem(name, _("longer than %(n)d characters") % {"n": 100}))
    if problems:
        raise InvalidDevice(problems)
    now = now or timezone.now()
    with transaction.atomic():
        if serial:
            existing = (
                Device.objects.select_for_update()
                .filter(manufacturer=manufacturer, model=model, serial=serial, active=True)
                .first()
            )
            if existing is not None:
                if existing.patient_id == patient.pk and existing.kind == kind:
                    return existing
                raise Conflict(
                    _(
                        "device %(manufacturer)s %(model)s %(serial)s is active under another "
                        "registration; deactivate it first"
                    )
                    % {"manufacturer": manufacturer, "model": model, "serial": serial}
                )
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    patient_id=patient.pk,
                    kind=kind,
                    manufacturer=manufacturer,
                    model=model,
                    serial=serial,
                    active=True,
                    created_at=now,
                )
        except IntegrityError:
            raise Conflict(
                _("device %(manufacturer)s %(model)s %(serial)s was just registered concurrently")
                % {"manufacturer": manufacturer, "model": model, "serial": serial}
            ) from None
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            resource_type="Device",
            resource_id=device.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={"kind": kind},
        )
    return device


def device_deactivate(
    *,
    device: Device,
    actor: AbstractBaseUser | None,
    entry_point: str,
    purpose: str = AuditEvent.Purpose.TREATMENT,
    client_address: str | None = None,
) -> Device:
    """Mark the device inactive (returned, replaced). Idempotent. Its past observations
    keep pointing at it."""
    with transaction.atomic():
        locked = Device.objects.select_for_update().get(pk=device.pk)
        if not locked.active:
            return locked
        locked.active = False
        locked.save(update_fields=["active"])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            resource_type="Device",
            resource_id=locked.pk,
            patient_id=locked.patient_id,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={"active": False},
        )
    return locked
