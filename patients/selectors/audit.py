"""Reads of the audit trail, and the verification of its hash chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from patients.chain_keys import ChainKeys, chain_keys
from patients.checkpoints import Checkpoint, CheckpointError, checkpoints_read
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
    broken_seq: int | None = None  # None with intact False: the checkpoints cannot be trusted
    reason: str = ""
    pending: int = 0  # committed records not chained yet (see audit_chain_extend)
    last_hash: str = GENESIS_HASH  # the hash of the last record checked
    keyed_from: int | None = None  # the first seq hashed with a key, None if none is
    checkpoints: int = 0  # checkpoints the chain was found to match
    last_checkpoint: Checkpoint | None = None  # the latest of those

    @property
    def unkeyed(self) -> int:
        """How many records, from seq 1, were hashed without a key (before keyed chaining)."""
        return self.records if self.keyed_from is None else self.keyed_from - 1

    def __str__(self) -> str:
        if not self.intact:
            if self.broken_seq is None:
                return f"audit checkpoints cannot be trusted: {self.reason}"
            return f"audit chain broken at seq {self.broken_seq}: {self.reason}"
        unkeyed = (
            f" (seq 1 to {self.unkeyed} hashed without a key: chained before keyed hashing)"
            if self.unkeyed
            else ""
        )
        waiting = f"; {self.pending} more not chained yet" if self.pending else ""
        return f"audit chain intact: {self.records} records{unkeyed}{waiting}"


def audit_chain_verify(
    *,
    chunk_size: int = 1000,
    checkpoint_dir: Path | None = None,
    since: Checkpoint | None = None,
    until: int | None = None,
) -> ChainReport:
    """Walk the chain in seq order, `chunk_size` records at a time (memory stays constant),
    and report the first broken link: a missing seq, a `prev_hash` that is not the previous
    record's hash, a `hash` that is not the record's HMAC under the key its `key_id` names
    (or an unknown key), a record hashed without a key where keyed hashing had begun, or a
    hash that differs from what a checkpoint recorded for its seq.

    The checkpoints are those in `checkpoint_dir` (AUDIT_CHECKPOINT_DIR by default), every
    line's signature checked first; a chain shorter than a checkpoint says was cut. With
    `since` (a checkpoint already trusted), only that checkpoint is used and only the records
    after it are walked; with `until`, the walk stops at that seq (checkpoints beyond it are
    not looked at): the backstop job checks what it is about to anchor that way, a bounded
    stretch at a time.

    The chain head is read after the checkpoints and the walk stops at its seq, so records
    chained during the walk are not mistaken for forgeries; a chain shorter than the head says
    was cut. Records not chained yet are counted in `pending`, not checked: nothing vouches
    for them until they are chained.
    """
    keys = chain_keys()
    if since is None:
        directory = checkpoint_dir or Path(settings.AUDIT_CHECKPOINT_DIR)
        try:
            anchors = checkpoints_read(directory, keys)
        except CheckpointError as exc:
            return ChainReport(False, 0, reason=str(exc))
    else:
        anchors = [since]
    disagreement = _disagreement(anchors)
    if disagreement:
        return ChainReport(False, 0, reason=disagreement)
    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
    events = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    last_seq = head.last_seq if head is not None else None
    if until is not None:
        last_seq = until if last_seq is None else min(last_seq, until)
    if last_seq is not None:
        events = events.filter(seq__lte=last_seq)
    walk = _Walk(keys, anchors)
    if since is not None:
        broken = walk.start_after(since, events.filter(seq=since.seq).first())
        if broken:
            return walk.report(*broken)
    while True:
        chunk = list(events.filter(seq__gte=walk.expected_seq)[:chunk_size])
        for event in chunk:
            broken = walk.check(event)
            if broken:
                return walk.report(*broken)
        if len(chunk) < chunk_size:
            break
    count = walk.expected_seq - 1
    in_reach = [a for a in anchors if until is None or a.seq <= until]
    furthest = max(in_reach, key=lambda a: a.seq, default=None)
    if furthest is not None and furthest.seq > count:
        return walk.report(
            count + 1,
            f"record missing (the {furthest.describe()} vouches for the chain up to seq "
            f"{furthest.seq}; it ends at seq {count})",
        )
    to_head = head is not None and (until is None or head.last_seq <= until)
    if head is not None and to_head and head.last_seq != count:
        return walk.report(
            count + 1, f"record missing (the chain head says the last seq is {head.last_seq})"
        )
    if head is not None and to_head and count and head.last_hash != walk.prev_hash:
        return walk.report(
            count, f"hash {walk.prev_hash} differs from the chain head's ({head.last_hash})"
        )
    pending = AuditEvent.objects.filter(seq__isnull=True).count()
    return walk.report(None, "", pending=pending)


def _disagreement(anchors: Sequence[Checkpoint]) -> str:
    """Why the checkpoints contradict one another about where keyed hashing began, or ""."""
    keyed = [a for a in anchors if a.keyed_from is not None]
    for other in keyed[1:]:
        if other.keyed_from != keyed[0].keyed_from:
            return (
                f"the {keyed[0].describe()} says keyed hashing began at seq "
                f"{keyed[0].keyed_from}, the {other.describe()} at seq {other.keyed_from}"
            )
    for unkeyed in anchors:
        if unkeyed.keyed_from is None and keyed and unkeyed.seq >= (keyed[0].keyed_from or 0):
            return (
                f"the {unkeyed.describe()} says no record up to it was hashed with a key, the "
                f"{keyed[0].describe()} that keyed hashing began at seq {keyed[0].keyed_from}"
            )
    return ""


class _Walk:
    """The state of a walk along the chain: where it is, and what the checkpoints say."""

    def __init__(self, keys: ChainKeys, anchors: Sequence[Checkpoint]) -> None:
        self.keys = keys
        self.anchors: dict[int, list[Checkpoint]] = {}
        for anchor in anchors:
            self.anchors.setdefault(anchor.seq, []).append(anchor)
        keyed = [a for a in anchors if a.keyed_from is not None]
        # Checkpoints agree (see _disagreement): any keyed one says where keyed hashing began.
        self.keyed_anchor = keyed[0] if keyed else None
        unkeyed = [a for a in anchors if a.keyed_from is None]
        self.unkeyed_anchor = max(unkeyed, key=lambda a: a.seq) if unkeyed else None
        self.expected_seq, self.prev_hash = 1, GENESIS_HASH
        self.keyed_from: int | None = None
        self.matched: list[Checkpoint] = []

    def start_after(self, since: Checkpoint, event: AuditEvent | None) -> tuple[int, str] | None:
        """Start after the record `since` vouches for, once that record is found to match."""
        if event is None:
            return since.seq, f"record missing (the {since.describe()} vouches for it)"
        if event.hash != since.hash:
            return since.seq, (
                f"hash {event.hash} is not the one the {since.describe()} recorded "
                f"({since.hash}): the chain was recomputed up to here"
            )
        self.matched.append(since)
        self.expected_seq, self.prev_hash = since.seq + 1, since.hash
        self.keyed_from = since.keyed_from
        return None

    def check(self, event: AuditEvent) -> tuple[int, str] | None:
        """The seq and the reason of the first problem with `event`, the next record; or None
        (and the walk moves past it)."""
        seq = event.seq
        assert seq is not None
        if seq != self.expected_seq:
            return self.expected_seq, f"record missing (the next stored record is seq {seq})"
        if event.prev_hash != self.prev_hash:
            return seq, (
                f"prev_hash {event.prev_hash} is not the hash of the previous record "
                f"({self.prev_hash})"
            )
        secret, refused = self._key(event)
        if refused:
            return seq, refused
        computed = event.compute_hash(secret)
        if event.hash != computed:
            how = (
                f"with key {event.key_id} (the record was altered, or its hash recomputed "
                "without the key)"
                if secret is not None
                else "without a key, as records chained before keyed hashing were (the record "
                "was altered)"
            )
            return seq, f"hash mismatch: stored {event.hash}, computed {computed} {how}"
        for anchor in self.anchors.get(seq, ()):
            if anchor.hash != event.hash:
                rewritten = (
                    f"a record after seq {self.matched[-1].seq}, the last checkpoint matched,"
                    if self.matched
                    else "a record up to this one"
                )
                return seq, (
                    f"hash {event.hash} is not the one the {anchor.describe()} recorded "
                    f"({anchor.hash}): {rewritten} was rewritten and the chain recomputed"
                )
            self.matched.append(anchor)
        if event.key_id and self.keyed_from is None:
            self.keyed_from = seq
        self.expected_seq, self.prev_hash = seq + 1, event.hash
        return None

    def _key(self, event: AuditEvent) -> tuple[bytes | None, str]:
        """The key that must have hashed `event` (None: none), or why it may not be so."""
        seq = event.seq
        assert seq is not None
        keyed = self.keyed_anchor
        if not event.key_id:
            if keyed is not None and keyed.keyed_from is not None and seq >= keyed.keyed_from:
                return None, (
                    f"hashed without a key, but keyed hashing began at seq {keyed.keyed_from} "
                    f"(the {keyed.describe()} says so)"
                )
            if self.keyed_from is not None:
                return None, (
                    f"hashed without a key, but keyed hashing began at seq {self.keyed_from}"
                )
            return None, ""
        unkeyed = self.unkeyed_anchor
        if unkeyed is not None and seq <= unkeyed.seq:
            return None, (
                f"hashed with a key, but the {unkeyed.describe()} says no record up to it was"
            )
        if keyed is not None and keyed.keyed_from is not None and seq < keyed.keyed_from:
            return None, (
                f"hashed with a key, but keyed hashing began at seq {keyed.keyed_from} "
                f"(the {keyed.describe()} says so)"
            )
        key = self.keys.get(event.key_id)
        if key is None:
            return None, (
                f"hashed with key id {event.key_id}, which is neither AUDIT_CHAIN_KEY nor one "
                "of AUDIT_CHAIN_KEY_FALLBACKS"
            )
        return key.secret, ""

    def report(self, broken_seq: int | None, reason: str, pending: int = 0) -> ChainReport:
        return ChainReport(
            intact=broken_seq is None,
            records=self.expected_seq - 1,
            broken_seq=broken_seq,
            reason=reason,
            pending=pending,
            last_hash=self.prev_hash,
            keyed_from=self.keyed_from,
            checkpoints=len(self.matched),
            last_checkpoint=max(self.matched, key=lambda a: a.seq, default=None),
        )
