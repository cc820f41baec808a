"""Every write of the patients app. See each module for its contract (locks, audit)."""

from patients.services.access import (
    patient_access_grant,
    patient_access_revoke,
    patient_break_glass,
)
from patients.services.audit import (
    audit_chain_anchor,
    audit_chain_extend,
    audit_checkpoint_write,
    audit_read_record,
    audit_record,
)
from patients.services.consents import consent_record, consent_withdraw
from patients.services.devices import device_deactivate, device_register
from patients.services.observations import (
    ObservationItem,
    observation_record,
    observations_record,
)
from patients.services.patients import PatientChanges, patient_create, patient_update
from patients.services.portal import patient_portal_account_create

__all__ = [
    "ObservationItem",
    "PatientChanges",
    "audit_chain_anchor",
    "audit_chain_extend",
    "audit_checkpoint_write",
    "audit_read_record",
    "audit_record",
    "consent_record",
    "consent_withdraw",
    "device_deactivate",
    "device_register",
    "observation_record",
    "observations_record",
    "patient_access_grant",
    "patient_access_revoke",
    "patient_break_glass",
    "patient_create",
    "patient_portal_account_create",
    "patient_update",
]
