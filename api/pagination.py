"""Keyset cursor pagination: each cursor carries the whole sort key of the row it follows.

DRF's CursorPagination keeps only the first ordering field in its cursor and counts ties on
it with an offset, capped at `offset_cutoff` (1000): on a list ordered by priority, or by
family name, a page past the thousandth row sharing one value repeats the previous one, and
the rows beyond are never reached. Here the cursor holds every ordering field of the last
(or first) row of the page, and the next page is the rows strictly after that key, read
through the ordering's index with no offset at all. The cursor is encrypted and
authenticated (Fernet, with a key derived from SECRET_KEY, its fallbacks still read): the
key may be patient data (a family name) that would otherwise sit in URLs and proxy logs,
and a client cannot forge one. The last ordering field must be unique
(every list ends on `id`); nullable fields sort their NULLs last on ascending order (first
on descending) on every database.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from base64 import urlsafe_b64encode
from typing import Any, cast

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db.models import F, Field, Model, Q, QuerySet
from django.db.models.expressions import OrderBy
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param


class Cursor(CursorPagination):
    """Opaque keyset cursors: stable under inserts, no COUNT(*), no OFFSET."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering: Any = "-id"
    # Read the page's sort keys first (an index-only walk where an index covers the
    # filters), then its rows by id: set on lists whose filters a covering index carries.
    keys_first = False
    # Ordering names that are annotations of the list's queryset, not model fields: the
    # field each one's values have (its nullability and how the cursor reads it back).
    annotated: dict[str, Field[Any, Any]] = {}

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        self.page_size = page_size
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self._fields = [(name.lstrip("-"), name.startswith("-")) for name in self.ordering]
        model = queryset.model
        self._nullable = {name: self._field(model, name).null for name, _ in self._fields}
        reverse, key = self._decode(request, model)

        rows = queryset.order_by(*self._order_by(reverse))
        if key is not None:
            rows = rows.filter(self._beyond(key, reverse))
        if self.keys_first:
            names = [name for name, _ in self._fields]
            keys = list(rows.select_related(None).only(*names)[: self.page_size + 1])
            found = model._default_manager.in_bulk([k.pk for k in keys[: self.page_size]])
            results = [found.get(k.pk, k) for k in keys[: self.page_size]] + keys[self.page_size :]
        else:
            results = list(rows[: self.page_size + 1])
        more = len(results) > self.page_size
        page = results[: self.page_size]
        if reverse:
            page.reverse()
            self.has_next, self.has_previous = key is not None, more
        else:
            self.has_next, self.has_previous = more, key is not None
        self.page = page
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return page

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.page:
            return None
        return self._link(self.page[-1], reverse=False)

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.page:
            return None
        return self._link(self.page[0], reverse=True)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """DRF's parameters, with the page size's bounds and default (README, Lists)."""
        parameters: list[dict[str, Any]] = list(super().get_schema_operation_parameters(view))
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The opaque cursor of the next or previous link; a forged or altered one is "
                    "a 404."
                )
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
                parameter["description"] = (
                    f"Rows per page: {self.page_size} by default, at most {self.max_page_size} "
                    "(a larger value gives the maximum)."
                )
        return parameters

    def get_html_context(self) -> Any:
        return {"previous_url": self.get_previous_link(), "next_url": self.get_next_link()}

    # The cursor: `r` (1: the page before the key) and `k` (the key, a JSON list).

    def _link(self, row: Model, *, reverse: bool) -> str:
        key = [_to_json(getattr(row, name)) for name, _ in self._fields]
        tokens = {"k": key, "r": 1 if reverse else 0}
        encoded = _cipher().encrypt(json.dumps(tokens, separators=(",", ":")).encode())
        return replace_query_param(
            self.base_url or "", self.cursor_query_param, encoded.decode("ascii")
        )

    def _decode(self, request: Request, model: type[Model]) -> tuple[bool, list[Any] | None]:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return False, None
        try:
            tokens = json.loads(_cipher().decrypt(encoded.encode("ascii")))
            reverse = tokens["r"] == 1
            raw = tokens["k"]
            if not isinstance(raw, list) or len(raw) != len(self._fields):
                raise ValueError("wrong key length")
            key = [
                None if value is None else self._field(model, name).to_python(value)
                for (name, _), value in zip(self._fields, raw, strict=True)
            ]
        except Exception:  # any bad cursor: forged, from another key, not JSON, bad values
            raise NotFound(self.invalid_cursor_message) from None
        return reverse, key

    def _field(self, model: type[Model], name: str) -> Field[Any, Any]:
        if name in self.annotated:
            return self.annotated[name]
        return cast("Field[Any, Any]", model._meta.get_field(name))

    # The query.

    def _order_by(self, reverse: bool) -> list[OrderBy]:
        """The ordering, NULLs taken as larger than any value (PostgreSQL's default, made
        explicit for the other databases), reversed for a page before the key."""
        order = []
        for name, descending in self._fields:
            if descending != reverse:
                order.append(F(name).desc(nulls_first=True))
            else:
                order.append(F(name).asc(nulls_last=True))
        return order

    def _beyond(self, key: list[Any], reverse: bool) -> Q:
        """The rows after `key` in the ordering (before it when `reverse`): for fields
        f1..fn, the first i-1 equal to the key's and the i-th beyond it, for some i."""
        beyond = Q(pk__in=[])
        equal = Q()
        for (name, descending), value in zip(self._fields, key, strict=True):
            larger = descending == reverse  # moving towards larger values of this field
            nullable = self._nullable[name]
            if value is None:
                step = Q(pk__in=[]) if larger else Q(**{f"{name}__isnull": False})
                same = Q(**{f"{name}__isnull": True})
            else:
                step = Q(**{f"{name}__gt" if larger else f"{name}__lt": value})
                if larger and nullable:
                    step |= Q(**{f"{name}__isnull": True})
                same = Q(**{name: value})
            beyond |= equal & step
            equal &= same
        return beyond


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Model):
        return value.pk
    return value


@functools.cache
def _cipher() -> MultiFernet:
    """Encrypts with a key derived from SECRET_KEY; decrypts with it and its fallbacks."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(urlsafe_b64encode(hashlib.sha256(f"parcours.cursor:{s}".encode()).digest()))
            for s in secrets
        ]
    )
