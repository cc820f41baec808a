"""`python manage.py verify_audit`: check the audit trail's hash chain.

Chains the committed records still waiting for it first (what the relay does within a
second of each commit), so that the check covers every record committed before it started.
Then prints `audit chain intact: N records` (exit 0; followed by `; M more not chained yet`
for records committed in the meantime) or `audit chain broken at seq N: <why>` (exit 1) for
the first broken link: a missing record, a prev_hash that is not the previous record's hash,
or a hash that does not match the record. Reads the chain in chunks, so memory stays
constant however long it is.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patients.selectors import audit_chain_verify
from patients.services import audit_chain_extend


class Command(BaseCommand):
    help = "Verify the hash chain of the access audit trail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--chunk-size", type=int, default=1000, help="records read per query (default 1000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chunk_size: int = options["chunk_size"]
        if chunk_size < 1:
            self.stderr.write("--chunk-size must be at least 1")
            sys.exit(2)
        while audit_chain_extend():
            pass
        report = audit_chain_verify(chunk_size=chunk_size)
        self.stdout.write(str(report))
        if not report.intact:
            sys.exit(1)
