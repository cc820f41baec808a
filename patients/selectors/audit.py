"""Reads of the audit trail, and the verification of its hash chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from patients.models import GENESIS_HASH, AuditChainHead, AuditEvent
from patients.selectors.ranges import check_range

MAX_AUDIT_RANGE = dt.timedelta(days=366)


def audit_events_for_patient(
    patient_id: int, since: dt.datetime, until: dt.datetime
) -> QuerySet[AuditEvent]:
    """Audit records about the patient that occurred in [since, until), in chain order.

    The range is required and at most 366 days long (InvalidRange otherwise), as the ANS
    traceability guide bounds AuditEvent searches by date. The caller has checked that the
    reader may see the patient's trail.
    """
    check_range(since, until, MAX_AUDIT_RANGE)
    return AuditEvent.objects.filter(
        patient_id=patient_id, occurred_at__gte=since, occurred_at__lt=until
    ).order_by("id")


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    records: int
    broken_seq: int | None = None
    reason: str = ""
    pending: int = 0  # committed records not chained yet (see audit_chain_extend)

    def __str__(self) -> str:
        if not self.intact:
            return f"audit chain broken at seq {self.broken_seq}: {self.reason}"
        waiting = f"; {self.pending} more not chained yet" if self.pending else ""
        return f"audit chain intact: {self.records} records{waiting}"


def audit_chain_verify(*, chunk_size: int = 1000) -> ChainReport:
    """Walk the chain in seq order, `chunk_size` records at a time (memory stays constant),
    and report the first broken link: a missing seq, a `prev_hash` that is not the previous
    record's hash, or a `hash` that does not match the record's content.

    The chain head is read first and the walk stops at its seq, so records chained during
    the walk are not mistaken for forgeries; a chain shorter than the head says was cut.
    Records not chained yet are counted in `pending`, not checked: nothing vouches for them
    until they are chained.
    """
    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
    events = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    if head is not None:
        events = events.filter(seq__lte=head.last_seq)
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    while True:
        chunk = list(events.filter(seq__gte=expected_seq)[:chunk_size])
        for event in chunk:
            if event.seq != expected_seq:
                return ChainReport(
                    False,
                    count,
                    expected_seq,
                    f"record missing (the next stored record is seq {event.seq})",
                )
            if event.prev_hash != prev_hash:
                return ChainReport(
                    False,
                    count,
                    event.seq,
                    f"prev_hash {event.prev_hash} is not the hash of the previous record "
                    f"({prev_hash})",
                )
            computed = event.compute_hash()
            if event.hash != computed:
                return ChainReport(
                    False,
                    count,
                    event.seq,
                    f"hash mismatch: stored {event.hash}, computed {computed} "
                    "(the record was altered)",
                )
            expected_seq, prev_hash, count = expected_seq + 1, event.hash, count + 1
        if len(chunk) < chunk_size:
            break
    if head is not None and head.last_seq != count:
        return ChainReport(
            False,
            count,
            count + 1,
            f"record missing (the chain head says the last seq is {head.last_seq})",
        )
    if head is not None and count and head.last_hash != prev_hash:
        return ChainReport(
            False,
            count,
            count,
            f"hash {prev_hash} differs from the chain head's ({head.last_hash})",
        )
    pending = AuditEvent.objects.filter(seq__isnull=True).count()
    return ChainReport(True, count, pending=pending)
