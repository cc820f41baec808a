"""A small practice for a server a test starts on a database of its own: `python -m
tests.integration.small_practice PASSWORD` (with DJANGO_SETTINGS_MODULE and the database in
the environment, after `migrate`) creates a GP and a nurse who log in with PASSWORD, six
patients in their care team each on a `care-test` pathway, a personal API token of the GP's,
and prints what the test needs as one JSON line. Synthetic data, made through the services
as the application makes it."""

from __future__ import annotations

import json
import sys

import django


def build(password: str) -> dict[str, object]:
    # Imported once django.setup() has run (__main__ below): models need the app registry.
    from api.services.api_tokens import api_token_create  # noqa: PLC0415 - after django.setup()
    from coordination.models import Task  # noqa: PLC0415 - after django.setup()
    from coordination.services import care_pathway_start  # noqa: PLC0415 - after django.setup()
    from directory.services import care_team_member_add  # noqa: PLC0415 - after django.setup()
    from tests.coordination.conftest import CARE_TEST, make_patient, make_practitioner  # noqa: PLC0415 - after django.setup()
    from workflows.actors import Actor  # noqa: PLC0415 - after django.setup()
    from workflows.services import definition_publish  # noqa: PLC0415 - after django.setup()

    definition_publish(source=CARE_TEST, actor=Actor(id="test"), fmt="yaml")
    gp = make_practitioner("gp", password=password)
    nurse = make_practitioner("nurse", password=password)
    patients = []
    for _ in range(6):
        patient = make_patient()
        care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
        care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        care_pathway_start(patient=patient, key="care-test", user=gp.user)
        patients.append(patient.pk)
    tasks = list(Task.objects.filter(patient_id__in=patients).values_list("pk", flat=True))
    token = api_token_create(user=gp.user, name="tests", actor=gp.user, lifetime=None)
    return {
        "gp": gp.user.username,
        "nurse": nurse.user.username,
        "patients": patients,
        "tasks": sorted(tasks),
        "pathway": ["care-test", 1],
        "gp_token": token.secret,
    }


if __name__ == "__main__":
    django.setup()
    print(json.dumps(build(sys.argv[1])))
