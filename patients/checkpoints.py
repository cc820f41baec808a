"""Checkpoints of the audit chain, kept outside the database.

A checkpoint says "on `at`, the record at `seq` had this `hash`, and keyed hashing began at
`keyed_from`", signed with the chain key. It is appended, as one line of JSON, to
`audit-checkpoints.jsonl` in AUDIT_CHECKPOINT_DIR, which the operator ships to write-once
storage (docs/audit.md). Since each hash covers every record before it, a checkpoint vouches
for the whole chain up to its seq: whoever rewrites or cuts that part of the table, even
recomputing the chain with the key, no longer matches it.

A line is the canonical JSON (patients.models.canonical_json) of

    {"at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "hash": <64 hex>, "key_id": <16 hex>,
     "keyed_from": <seq or null>, "seq": <integer >= 1>, "sig": <64 hex>}

where `sig` is the lowercase hex HMAC-SHA256, under the key `key_id` names, of the UTF-8
bytes of "parcours audit checkpoint:" followed by the canonical JSON of the other five
members. Lines are appended with one write each (O_APPEND), so concurrent writers (the
backstop job, verify_audit) never interleave; a duplicate or out-of-order line is harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patients.chain_keys import ChainKey, ChainKeys
from patients.models import canonical_json, canonical_timestamp

FILE_NAME = "audit-checkpoints.jsonl"
# Read back: the file being written and any the operator rotated or restored beside it.
FILE_PATTERN = "audit-checkpoints*.jsonl"
SIGNED_PREFIX = "parcours audit checkpoint:"
MEMBERS = frozenset({"at", "hash", "key_id", "keyed_from", "seq", "sig"})
HEX64 = re.compile(r"[0-9a-f]{64}")
TAIL_BYTES = 8192  # a line is about 250 bytes


class CheckpointError(Exception):
    """A checkpoint file that cannot be trusted: unreadable, malformed, or a line whose
    signature does not hold. The message names the file and line."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    keyed_from: int | None
    at: dt.datetime
    key_id: str
    sig: str
    source: str = ""  # where it was read: "audit-checkpoints.jsonl line 3"

    def body(self) -> dict[str, Any]:
        return {
            "at": canonical_timestamp(self.at),
            "hash": self.hash,
            "key_id": self.key_id,
            "keyed_from": self.keyed_from,
            "seq": self.seq,
        }

    def line(self) -> str:
        return canonical_json({**self.body(), "sig": self.sig}) + "\n"

    def describe(self) -> str:
        where = f", {self.source}" if self.source else ""
        return f"checkpoint of {canonical_timestamp(self.at)} (seq {self.seq}{where})"


def _signed_text(body: dict[str, Any]) -> bytes:
    return (SIGNED_PREFIX + canonical_json(body)).encode("utf-8")


def checkpoint_sign(
    *, seq: int, hash: str, keyed_from: int | None, at: dt.datetime, key: ChainKey
) -> Checkpoint:
    unsigned = Checkpoint(seq, hash, keyed_from, at, key.id, "")
    return Checkpoint(seq, hash, keyed_from, at, key.id, key.mac(_signed_text(unsigned.body())))


def checkpoint_parse(text: str, keys: ChainKeys, source: str) -> Checkpoint:
    """The checkpoint a line holds, its signature checked; CheckpointError naming `source`
    otherwise."""
    try:
        data = json.loads(text)
    except ValueError:
        raise CheckpointError(f"{source}: not JSON") from None
    if not isinstance(data, dict) or set(data) != MEMBERS:
        raise CheckpointError(f"{source}: not a checkpoint (members {', '.join(sorted(MEMBERS))})")
    seq, keyed_from = data["seq"], data["keyed_from"]
    valid = (
        type(seq) is int
        and seq >= 1
        and (keyed_from is None or (type(keyed_from) is int and 1 <= keyed_from <= seq))
        and all(isinstance(data[m], str) for m in ("at", "hash", "key_id", "sig"))
        and HEX64.fullmatch(data["hash"]) is not None
        and HEX64.fullmatch(data["sig"]) is not None
    )
    at = _timestamp(data["at"]) if valid else None
    if at is None:
        raise CheckpointError(f"{source}: a member has a value of the wrong form")
    key = keys.get(data["key_id"])
    if key is None:
        raise CheckpointError(
            f"{source}: signed with key id {data['key_id']}, which is neither AUDIT_CHAIN_KEY "
            "nor one of AUDIT_CHAIN_KEY_FALLBACKS"
        )
    checkpoint = Checkpoint(seq, data["hash"], keyed_from, at, key.id, data["sig"], source)
    if key.mac(_signed_text(checkpoint.body())) != checkpoint.sig:
        raise CheckpointError(
            f"{source}: the signature does not match the checkpoint (the line was altered, "
            "or forged without the key)"
        )
    return checkpoint


def _timestamp(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return moment if canonical_timestamp(moment) == text else None


def checkpoints_read(directory: Path, keys: ChainKeys) -> list[Checkpoint]:
    """Every checkpoint in the directory's checkpoint files (none if it does not exist), in
    file-name then line order; CheckpointError at the first line that cannot be trusted."""
    found: list[Checkpoint] = []
    try:
        paths = sorted(directory.glob(FILE_PATTERN))
        for path in paths:
            with path.open(encoding="utf-8") as lines:
                for number, text in enumerate(lines, 1):
                    if text.strip():
                        source = f"{path.name} line {number}"
                        found.append(checkpoint_parse(text, keys, source))
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read the checkpoints in {directory}: {exc}") from exc
    return found


def checkpoint_last(directory: Path, keys: ChainKeys) -> Checkpoint | None:
    """The last checkpoint of the file being written (None if there is none), read from its
    tail; CheckpointError if that line cannot be trusted, OSError if the file cannot be
    read."""
    path = directory / FILE_NAME
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - TAIL_BYTES))
            tail = file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    return checkpoint_parse(lines[-1], keys, f"{FILE_NAME}, last line")


def checkpoint_append(directory: Path, checkpoint: Checkpoint) -> Path:
    """Append the checkpoint to the directory's file, in one write, and flush it to disk.
    OSError when the directory cannot be written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, checkpoint.line().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
