"""Every read of the patients app. Reads that answer a user go through `visible_patients` /
`access_patient` first; the others take ids the caller has already checked."""

from patients.selectors.audit import (
    MAX_AUDIT_RANGE,
    ChainReport,
    audit_chain_verify,
    audit_events_for_patient,
)
from patients.selectors.observations import (
    MeasuredValue,
    delta,
    last_value,
    observation_list,
)
from patients.selectors.patients import (
    PatientPermission,
    access_patient,
    break_glass_grant_active,
    break_glass_grant_list,
    consent_active,
    consent_list,
    device_list,
    lock_patient,
    may_break_glass,
    patient_get,
    patient_visible,
    patient_visible_condition,
    visible_patient_ids,
    visible_patient_ids_by_user,
    visible_patients,
)

__all__ = [
    "MAX_AUDIT_RANGE",
    "ChainReport",
    "MeasuredValue",
    "PatientPermission",
    "access_patient",
    "audit_chain_verify",
    "audit_events_for_patient",
    "break_glass_grant_active",
    "break_glass_grant_list",
    "consent_active",
    "consent_list",
    "delta",
    "device_list",
    "last_value",
    "lock_patient",
    "may_break_glass",
    "observation_list",
    "patient_get",
    "patient_visible",
    "patient_visible_condition",
    "visible_patient_ids",
    "visible_patient_ids_by_user",
    "visible_patients",
]
