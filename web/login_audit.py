"""Logins in the audit trail: every successful login and every failed attempt, on the web
login page, the admin's and (sent by api.oauth2_endpoints) the OAuth2 token endpoint. Django
announces both with its auth signals, the hook its authentication offers for this (django-axes
counts failures from the same signal). A refused Pro Santé Connect login (web.psc) is recorded
by `login_refused`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from patients.models import AuditEvent
from patients.services import audit_record

MAX_USERNAME = 150
# Set on the request by a login other than the password's (web.psc: "psc"), for the record.
LOGIN_METHOD = "parcours_login_method"


def entry_point(request: HttpRequest | None) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/admin/"):
        return AuditEvent.EntryPoint.ADMIN
    if path.startswith(("/o/", "/api/")):
        return AuditEvent.EntryPoint.REST
    return AuditEvent.EntryPoint.WEB


def _address(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


@receiver(user_logged_in, dispatch_uid="parcours-login-audit")
def login_succeeded(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(
        actor=user,
        action=AuditEvent.Action.LOGIN,
        resource_type="User",
        resource_id=user.pk,
        purpose=AuditEvent.Purpose.ADMINISTRATION,
        entry_point=entry_point(request),
        client_address=_address(request),
        detail={
            "username": user.get_username()[:MAX_USERNAME],
            **({"method": method} if (method := getattr(request, LOGIN_METHOD, None)) else {}),
        },
    )


@receiver(user_login_failed, dispatch_uid="parcours-login-failure-audit")
def login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """`credentials` as Django sends them, the password masked; for the token endpoint,
    {"username": client_id}."""
    _login_denied(
        request,
        username=str(credentials.get("username") or ""),
        locked_out=bool(getattr(request, "axes_locked_out", False)),
    )


def login_refused(request: HttpRequest, *, username: str, reason: str) -> None:
    """A Pro Santé Connect login refused by web.psc (`reason`: why), which Django's
    authentication does not announce. Recorded as the failures above are, with the method
    and the reason; django-axes does not count it (web.psc says why)."""
    _login_denied(request, username=username, locked_out=False, method="psc", reason=reason)


def _login_denied(
    request: HttpRequest | None, *, username: str, locked_out: bool, **detail: str
) -> None:
    audit_record(
        actor=None,
        actor_label="anonymous",
        action=AuditEvent.Action.LOGIN,
        resource_type="User",
        purpose=AuditEvent.Purpose.ADMINISTRATION,
        outcome=AuditEvent.Outcome.DENIED,
        entry_point=entry_point(request),
        client_address=_address(request),
        detail={"username": username[:MAX_USERNAME], "locked_out": locked_out, **detail},
    )
