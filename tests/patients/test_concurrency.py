"""Concurrent writers with real connections to PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections
from django.utils import translation

from patients.errors import Conflict
from patients.models import AuditEvent, Consent, Patient
from patients.selectors import audit_chain_verify
from patients.services import audit_chain_extend, audit_record, consent_record, patient_update
from tests.patients.factories import PatientFactory

N = 8
REST = AuditEvent.EntryPoint.REST


def run_concurrently(call: Callable[[int], object]) -> tuple[int, list[str]]:
    barrier = threading.Barrier(N)
    successes: list[int] = []
    conflicts: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            barrier.wait()
            # A new thread starts in the site's language: answer in English, as the test's
            # own thread does (tests/conftest.py).
            with translation.override("en"):
                call(index)
            with lock:
                successes.append(index)
        except Conflict as conflict:
            with lock:
                conflicts.append(str(conflict))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return len(successes), conflicts


def test_concurrent_appends_and_chainers_make_one_gapless_chain(postgres_transactional):
    patient = PatientFactory.create()

    def append_five(index: int) -> None:
        for _ in range(5):
            audit_record(
                actor=None,
                actor_label=f"client:synthetic-{index}",
                action=AuditEvent.Action.READ,
                resource_type="Patient",
                resource_id=patient.pk,
                patient_id=patient.pk,
                purpose=AuditEvent.Purpose.TREATMENT,
                entry_point=REST,
            )

    successes, conflicts = run_concurrently(append_five)
    chainers, _ = run_concurrently(lambda _: audit_chain_extend(limit=3))
    while audit_chain_extend(limit=3):
        pass

    assert (successes, conflicts, chainers) == (N, [], N)
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 5 * N + 1))
    assert str(audit_chain_verify()) == f"audit chain intact: {5 * N} records"


def test_concurrent_consents_to_one_scope_give_one_consent(postgres_transactional):
    patient = PatientFactory.create()

    successes, conflicts = run_concurrently(
        lambda _: consent_record(
            patient=patient, scope="remote_monitoring", actor=None, entry_point=REST
        )
    )

    assert successes == 1
    assert len(conflicts) == N - 1
    assert Consent.objects.filter(patient=patient).count() == 1
    assert AuditEvent.objects.count() == 1


def test_concurrent_updates_from_one_version_give_one_success(postgres_transactional):
    patient = PatientFactory.create()

    successes, conflicts = run_concurrently(
        lambda index: patient_update(
            patient=patient,
            expected_version=1,
            changes={"city": f"Testville {index}"},
            actor=None,
            entry_point=REST,
        )
    )

    assert successes == 1
    assert len(conflicts) == N - 1
    assert all(c.startswith(f"patient {patient.pk} is at version 2, not 1") for c in conflicts)
    assert Patient.objects.get(pk=patient.pk).version == 2
    assert AuditEvent.objects.count() == 1
