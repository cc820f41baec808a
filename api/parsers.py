"""Request body parsers: DRF's, made safe against hostile bodies.

A JSON body nested thousands of levels deep makes Python's decoder raise RecursionError
(a 500), and one nested a few hundred levels deep, once parsed, can exhaust the stack of
whatever walks it next (validation, serialisation, the audit record). No request of this
API needs more than a few levels: deeper bodies are refused with a 400 naming the limit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.nesting import nested_deeper_than


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than API_MAX_JSON_DEPTH levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = int(settings.API_MAX_JSON_DEPTH)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
        else:
            if not nested_deeper_than(data, limit):
                return data
        raise ParseError(
            _("the JSON body is nested more than %(limit)d levels deep") % {"limit": limit}
        )
