"""What the directory tells the apps above it, synchronously, inside the transaction of the
change (Django signals): the directory sits below coordination and cannot call it.

- `patient_access_changed` (sender: the Patient model; `patient`, `actor_label`, `now`):
  who may see the patient changed (a member joined or left the care team, a consent was
  withdrawn or given again). Coordination puts back on offer the tasks whose owner lost
  access (coordination.services.tasks.release_lost_tasks, connected in its AppConfig), and
  gives back to their owner those released by an objection once the owner sees the patient
  again (return_regained_tasks).
- `consent_changed` (sender: the Patient model; `patient`, `scope`, `given`, `actor_label`,
  `now`): a consent was given or withdrawn. On a withdrawn `remote_monitoring`, coordination
  closes the work opened for missing measurements
  (coordination.services.consent.missing_measurement_work_close).
"""

from __future__ import annotations

from django.dispatch import Signal

patient_access_changed = Signal()
consent_changed = Signal()
