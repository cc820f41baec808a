"""Uploading, publishing and retiring pathway definitions.

`(key, version)` identifies a definition forever. A draft may be replaced by another upload
of the same `(key, version)`; once active, the content is frozen: publishing identical content
again is a no-op, different content is refused. Identity of content is the SHA-256 of the
document in canonical JSON, so reformatting a YAML file does not count as a change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from workflows.actors import Actor
from workflows.definition import InvalidDefinition, localized, validate_source
from workflows.definition.parsing import Format, guess_format
from workflows.errors import DefinitionConflict, NotFound
from workflows.models import PathwayDefinition

Status = PathwayDefinition.Status


def document_checksum(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class UploadResult:
    definition: PathwayDefinition
    created: bool
    changed: bool


def definition_upload(
    *,
    source: str,
    actor: Actor,
    filename: str | None = None,
    fmt: Format | None = None,
    now: dt.datetime | None = None,
) -> UploadResult:
    """Validate `source` and store it as a draft (or find it already stored).

    Raises InvalidDefinition with every problem, or DefinitionConflict when `(key, version)`
    is already active or retired with different content.
    """
    fmt = fmt or guess_format(filename, source)
    result = validate_source(source, filename=filename, fmt=fmt)
    if not result.ok:
        raise InvalidDefinition(result.problems)
    document = result.document
    checksum = document_checksum(document)
    now = now or timezone.now()
    with transaction.atomic():
        existing = (
            PathwayDefinition.objects.select_for_update()
            .filter(key=document["key"], version=document["version"])
            .first()
        )
        if existing is not None:
            if existing.checksum == checksum:
                return UploadResult(existing, created=False, changed=False)
            if existing.status != Status.DRAFT:
                raise DefinitionConflict(
                    _(
                        "%(key)s@%(version)s is already %(status)s with different content; "
                        "published versions are immutable, use a new version"
                    )
                    % {
                        "key": existing.key,
                        "version": existing.version,
                        "status": existing.status,
                    }
                )
            existing.source, existing.source_format = source, fmt
            existing.document, existing.checksum = document, checksum
            existing.title = localized(document["title"], "en")[:500]
            existing.save(
                update_fields=["source", "source_format", "document", "checksum", "title"]
            )
            return UploadResult(existing, created=False, changed=True)
        try:
            with transaction.atomic():
                definition = PathwayDefinition.objects.create(
                    key=document["key"],
                    version=document["version"],
                    title=localized(document["title"], "en")[:500],
                    status=Status.DRAFT,
                    source=source,
                    source_format=fmt,
                    document=document,
                    checksum=checksum,
                    created_by=actor.id,
                    created_at=now,
                )
        except IntegrityError:
            # A concurrent upload of the same (key, version) won; retrying resolves it.
            raise DefinitionConflict(
                _("%(key)s@%(version)s is being uploaded concurrently; retry")
                % {"key": document["key"], "version": document["version"]}
            ) from None
    return UploadResult(definition, created=True, changed=True)


def definition_activate(
    *, key: str, version: int, actor: Actor, now: dt.datetime | None = None
) -> PathwayDefinition:
    """draft -> active (idempotent on an active definition). New instances use the highest
    active version of a key."""
    with transaction.atomic():
        definition = _lock(key, version)
        if definition.status == Status.ACTIVE:
            return definition
        if definition.status == Status.RETIRED:
            raise DefinitionConflict(
                _("%(key)s@%(version)s is retired and cannot be reactivated")
                % {"key": key, "version": version}
            )
        definition.status = Status.ACTIVE
        definition.published_at = now or timezone.now()
        definition.save(update_fields=["status", "published_at"])
        return definition


def definition_retire(
    *, key: str, version: int, actor: Actor, now: dt.datetime | None = None
) -> PathwayDefinition:
    """active -> retired: no new instances; running ones carry on. Idempotent."""
    with transaction.atomic():
        definition = _lock(key, version)
        if definition.status == Status.RETIRED:
            return definition
        if definition.status == Status.DRAFT:
            raise DefinitionConflict(
                _("%(key)s@%(version)s is a draft; only active versions retire")
                % {"key": key, "version": version}
            )
        definition.status = Status.RETIRED
        definition.retired_at = now or timezone.now()
        definition.save(update_fields=["status", "retired_at"])
        return definition


@dataclass(frozen=True)
class PublishResult:
    definition: PathwayDefinition
    created: bool
    activated: bool


def definition_publish(
    *,
    source: str,
    actor: Actor,
    filename: str | None = None,
    fmt: Format | None = None,
    now: dt.datetime | None = None,
) -> PublishResult:
    """Validate, store and activate in one transaction. Identical content: a no-op."""
    with transaction.atomic():
        upload = definition_upload(source=source, actor=actor, filename=filename, fmt=fmt, now=now)
        definition = upload.definition
        if definition.status == Status.RETIRED and not upload.changed:
            return PublishResult(definition, created=False, activated=False)
        was_active = definition.status == Status.ACTIVE
        definition = definition_activate(
            key=definition.key, version=definition.version, actor=actor, now=now
        )
    return PublishResult(definition, created=upload.created, activated=not was_active)


def _lock(key: str, version: int) -> PathwayDefinition:
    try:
        return PathwayDefinition.objects.select_for_update().get(key=key, version=version)
    except PathwayDefinition.DoesNotExist:
        raise NotFound(
            _("no pathway definition %(key)s@%(version)s") % {"key": key, "version": version}
        ) from None
