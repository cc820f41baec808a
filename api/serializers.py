"""Strict request bodies: a field an endpoint does not accept is refused (400, one error
per unknown field, keyed by its name), never silently dropped.

Every serializer that reads a request body derives from `StrictSerializer`; a serializer
nested in it (an item of a list, an object field) is strict when it derives from it too, so
an unknown field of the fourth observation of a batch is reported as `items.3.<name>`.
Read-only fields are not accepted. Views that read `request.data` without a serializer
call `refuse_unknown_fields` with the names they accept (none for bodiless actions).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ValidationError


def unknown_field_errors(data: object, accepted: Collection[str]) -> dict[str, list[str]]:
    """One error per key of `data` that is not in `accepted` (nothing if `data` is not a
    mapping: the caller's own validation reports that)."""
    if not isinstance(data, Mapping):
        return {}
    unknown = [str(name) for name in data if name not in accepted]
    if not unknown:
        return {}
    listed = ", ".join(accepted) if accepted else _("none (this request takes no body fields)")
    message = _("unknown field; the fields accepted here are: %(listed)s") % {"listed": listed}
    return {name: [message] for name in unknown}


def refuse_unknown_fields(data: object, accepted: Collection[str] = ()) -> None:
    """Raises ValidationError naming every key of `data` not in `accepted`."""
    errors = unknown_field_errors(data, accepted)
    if errors:
        raise ValidationError(errors)


class StrictSerializer(serializers.Serializer[Any]):
    """A Serializer that refuses the fields it does not declare as writable."""

    def accepted_fields(self) -> list[str]:
        return [name for name, field in self.fields.items() if not field.read_only]

    def to_internal_value(self, data: Any) -> Any:
        unknown = unknown_field_errors(data, self.accepted_fields())
        try:
            value = super().to_internal_value(data)
        except ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise ValidationError(unknown)
        return value
