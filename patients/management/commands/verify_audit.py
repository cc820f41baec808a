"""`python manage.py verify_audit`: check the audit trail's keyed hash chain against the keys
and the checkpoints kept outside the database, then anchor it (docs/audit.md).

Chains the committed records still waiting for it first (what the relay does within a
second of each commit), so that the check covers every record committed before it started.
Then prints `audit chain intact: N records` (followed by `; M more not chained yet` for
records committed in the meantime), a line saying which checkpoints the chain matched, and,
unless `--no-checkpoint`, `checkpoint written: seq N in FILE` when the chain grew since the
last checkpoint (exit 0). Otherwise it prints `audit chain broken at seq N: <why>` for the
first broken link (a missing record, a prev_hash that is not the previous record's hash, a
hash that is not the record's HMAC under its key, a record hashed without a key after keyed
hashing began, a hash a checkpoint recorded otherwise, a chain shorter than a checkpoint
says) or `audit checkpoints cannot be trusted: <file> line N: <why>`, and exits 1. Reads the
chain in chunks, so memory stays constant however long it is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from patients.checkpoints import FILE_NAME, CheckpointError
from patients.models import canonical_timestamp
from patients.selectors import audit_chain_verify
from patients.services import audit_chain_extend, audit_checkpoint_write


class Command(BaseCommand):
    help = (
        "Verify the keyed hash chain of the access audit trail against its checkpoints, "
        "then append a checkpoint of it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--chunk-size", type=int, default=1000, help="records read per query (default 1000)"
        )
        parser.add_argument(
            "--checkpoint-dir",
            type=Path,
            default=None,
            help="read the checkpoints from this directory (e.g. a copy restored from "
            "write-once storage) instead of AUDIT_CHECKPOINT_DIR",
        )
        parser.add_argument(
            "--no-checkpoint",
            action="store_true",
            help="write no checkpoint to AUDIT_CHECKPOINT_DIR",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chunk_size: int = options["chunk_size"]
        if chunk_size < 1:
            self.stderr.write("--chunk-size must be at least 1")
            sys.exit(2)
        directory: Path = options["checkpoint_dir"] or Path(settings.AUDIT_CHECKPOINT_DIR)
        while audit_chain_extend():
            pass
        report = audit_chain_verify(chunk_size=chunk_size, checkpoint_dir=directory)
        self.stdout.write(str(report))
        if not report.intact:
            sys.exit(1)
        last = report.last_checkpoint
        if last is None:
            self.stdout.write(
                f"no checkpoint in {directory} yet: nothing outside the database vouches "
                "for the chain"
            )
        else:
            self.stdout.write(
                f"checkpoints matched: {report.checkpoints} in {directory}, the last at seq "
                f"{last.seq} ({canonical_timestamp(last.at)})"
            )
        if options["no_checkpoint"] or not report.records:
            return
        try:
            written = audit_checkpoint_write(
                seq=report.records, hash=report.last_hash, keyed_from=report.keyed_from
            )
        except (OSError, CheckpointError) as exc:
            self.stderr.write(f"no checkpoint written to {settings.AUDIT_CHECKPOINT_DIR}: {exc}")
            sys.exit(1)
        if written is not None:
            path = Path(settings.AUDIT_CHECKPOINT_DIR) / FILE_NAME
            self.stdout.write(f"checkpoint written: seq {written.seq} in {path}")
