"""ETag / If-Match on mutable resources: the ETag is the resource's version."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = gettext_lazy("the resource changed: If-Match does not match its current ETag")
    default_code = "precondition_failed"


def etag(prefix: str, version: int) -> str:
    return f'"{prefix}{version}"'


def expected_version(request: Request, prefix: str) -> int | None:
    """The version the client's If-Match names, or None when it sent none. A malformed
    If-Match cannot match anything: 412."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.startswith(prefix) or not value[len(prefix) :].isdigit():
        raise PreconditionFailed(
            _("If-Match %(header)r is not an ETag of this resource") % {"header": header}
        )
    return int(value[len(prefix) :])
