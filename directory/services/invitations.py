"""Invitations: the single-use, expiring link with which the owner of an account that has no
password yet sets one, once (a practitioner created through the API, a patient's portal
account).

- The link's token is 256 random bits; only its SHA-256 is stored (`Invitation.token_hash`),
  and the token is nowhere else but in the e-mail: the API that asks for an invitation never
  sees it.
- An account has at most one pending invitation: a new one revokes the earlier ones (in the
  same transaction, the user row locked). Deactivating the account revokes them too
  (directory.services.accounts.account_deactivate), and a deactivated account's link is
  refused even if it was not.
- An invitation is for an account nobody has used yet: one with a usable password, or that
  has ever signed in, gets the password reset instead (Conflict). Staff accounts are never
  invited.
- The e-mail is sent last in the service's transaction (Django's mail API, the EMAIL_URL
  backend), in the invitation's language. A failure to send raises the OSError from the
  service's call and rolls the invitation back, with the portal account created for it:
  nothing is left behind, and asking again (with or without an Idempotency-Key) starts
  clean.
- Accepting locks the invitation row, so two submissions of the same link set one password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from core.errors import Conflict, InvalidInput, NotFound, Problem
from directory.models import Invitation, Practitioner
from directory.services.accounts import account_password_set
from patients.models import AuditEvent, Patient
from patients.selectors import lock_patient
from patients.services.audit import audit_record
from patients.services.portal import patient_portal_account_create

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"


class InvitationGone(NotFound):
    """The invitation exists but cannot be used any more: used, revoked or expired (the page
    answers 410). `reason` says which."""

    def __init__(self, invitation_id: int, reason: str) -> None:
        self.reason = reason
        super().__init__("invitation", invitation_id)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    username: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(*, site_url: str, token: str) -> str:
    """The page that accepts the invitation (web, `/invitation/<token>/`)."""
    return f"{site_url.rstrip('/')}{reverse('web:invitation', kwargs={'token': token})}"


def _language(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _lock_user(user_id: int) -> Any:
    user = get_user_model()._default_manager.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("user", user_id)
    return user


def _check_invitable(user: Any) -> None:
    if not user.is_active:
        raise Conflict("the account is deactivated: reactivate it before inviting its owner")
    if user.is_staff or user.is_superuser:
        raise Conflict("staff accounts are not invited: they are managed by an administrator")
    if user.has_usable_password() or user.last_login is not None:
        raise Conflict(
            "the account is already in use (it has a password or has signed in): its owner "
            "resets the password from the login page instead"
        )


def _issue(
    *,
    user: Any,
    kind: str,
    email: str,
    language: str,
    site_url: str,
    actor: AbstractBaseUser | None,
    now: dt.datetime,
) -> tuple[Invitation, Callable[[], None]]:
    """Revoke the user's pending invitations and store a new one; returns it with the
    function that sends its e-mail, which the caller calls last in its transaction (which
    holds the user row's lock). When the e-mail cannot be sent, the OSError rolls the
    invitation back with everything else the caller did (a portal account created for it,
    the audit record): a failed invitation leaves nothing behind, and a retry, with or
    without an Idempotency-Key, starts clean. A link is never sent for an invitation that
    was not stored; one sent just before a commit that then failed leads to the "unknown
    link" page and is asked for again."""
    Invitation.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        user=user,
        kind=kind,
        token_hash=token_digest(token),
        email=email,
        language=language,
        created_by_id=actor.pk if actor is not None and actor.is_authenticated else None,
        created_at=now,
        expires_at=now + settings.INVITATION_LIFETIME,
    )
    context = {
        "link": invitation_link(site_url=site_url, token=token),
        "name": user.get_full_name() or user.get_username(),
        "username": user.get_username(),
        "kind": kind,
        "expires_at": invitation.expires_at,
    }
    return invitation, lambda: _send(email=email, language=language, context=context)


def _send(*, email: str, language: str, context: dict[str, Any]) -> None:
    with translation.override(language):
        subject = render_to_string("directory/email/invitation_subject.txt", context)
        body = render_to_string("directory/email/invitation.txt", context)
    send_mail(" ".join(subject.split()), body, None, [email])


def practitioner_invite(
    *,
    practitioner: Practitioner,
    actor: AbstractBaseUser | None,
    site_url: str,
    language: str | None = None,
    now: dt.datetime | None = None,
) -> IssuedInvitation:
    """Invite the practitioner to set the password of their account, at the account's own
    e-mail address (never another: an invitation given to someone else would hand them the
    practitioner's access). Conflict without an address, or for an account in use."""
    with transaction.atomic():
        user = _lock_user(practitioner.user_id)
        _check_invitable(user)
        if not user.email:
            raise Conflict(
                "the practitioner's account has no e-mail address: give one when creating it"
            )
        invitation, send = _issue(
            user=user,
            kind=Invitation.Kind.PRACTITIONER,
            email=user.email,
            language=_language(language),
            site_url=site_url,
            actor=actor,
            now=now or timezone.now(),
        )
        send()
    return IssuedInvitation(invitation, user.get_username())


def patient_portal_invite(
    *,
    patient: Patient,
    actor: AbstractBaseUser | None,
    site_url: str,
    email: str = "",
    language: str | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> IssuedInvitation:
    """Invite the patient to their portal: create the portal account if they have none
    (patients.services.portal, its username the e-mail address), then issue the invitation,
    sent to `email` if given (it becomes the account's address), else to the account's, else
    to the patient's. Audited (an `update` of the patient: its portal account invited).

    Locks the patient row, then the account's. InvalidInput for an e-mail that is not one;
    Conflict when there is no address at all, or the account is already in use."""
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput([Problem("email", "not an e-mail address")]) from None
    moment = now or timezone.now()
    with transaction.atomic():
        locked = lock_patient(patient_id=patient.pk)
        if locked.user_id is None:
            address = email or locked.email.strip()
            if not address:
                raise Conflict(
                    "the patient has no e-mail address: give one in `email` (or record it on "
                    "the patient)"
                )
            patient_portal_account_create(
                patient=locked,
                email=address,
                actor=actor,
                entry_point=entry_point,
                client_address=client_address,
            )
        user = _lock_user(locked.user_id)  # type: ignore[arg-type]  # set just above
        _check_invitable(user)
        address = email or user.email or locked.email.strip()
        if not address:
            raise Conflict("the patient has no e-mail address: give one in `email`")
        if user.email != address:
            user.email = address
            user.save(update_fields=["email"])
        invitation, send = _issue(
            user=user,
            kind=Invitation.Kind.PATIENT_PORTAL,
            email=address,
            language=_language(language),
            site_url=site_url,
            actor=actor,
            now=moment,
        )
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            resource_type="PortalInvitation",
            resource_id=invitation.pk,
            patient_id=locked.pk,
            purpose=AuditEvent.Purpose.ADMINISTRATION,
            entry_point=entry_point,
            client_address=client_address,
            detail={"portal_account": user.pk, "expires_at": invitation.expires_at.isoformat()},
        )
        send()
    return IssuedInvitation(invitation, user.get_username())


def invitation_for_token(*, token: str, now: dt.datetime | None = None) -> Invitation:
    """The pending invitation of this token, with its user. NotFound for a token that names
    none; InvitationGone for one used, revoked or expired, or whose account was deactivated.
    """
    invitation = (
        Invitation.objects.select_related("user").filter(token_hash=token_digest(token)).first()
    )
    if invitation is None:
        raise NotFound("invitation", "token")
    _check_pending(invitation, now or timezone.now())
    return invitation


def _check_pending(invitation: Invitation, now: dt.datetime) -> None:
    if invitation.used_at is not None:
        raise InvitationGone(invitation.pk, "used")
    if invitation.revoked_at is not None:
        raise InvitationGone(invitation.pk, "revoked")
    if invitation.expires_at <= now:
        raise InvitationGone(invitation.pk, "expired")
    if not invitation.user.is_active:
        raise InvitationGone(invitation.pk, "revoked")


def invitation_accept(
    *,
    token: str,
    password: str,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> AbstractBaseUser:
    """Set the account's password (the validators of AUTH_PASSWORD_VALIDATORS; the account's
    tokens revoked, as any new password does) and mark the invitation used, in one
    transaction with the invitation row locked: a second use finds it used. InvalidInput
    naming the password's problems leaves the invitation pending. A patient's portal
    invitation is audited (an `update` of the patient by its own account)."""
    moment = now or timezone.now()
    with transaction.atomic():
        found = Invitation.objects.filter(token_hash=token_digest(token)).first()
        if found is None:
            raise NotFound("invitation", "token")
        invitation = Invitation.objects.select_for_update().select_related("user").get(pk=found.pk)
        _check_pending(invitation, moment)
        user = account_password_set(user_id=invitation.user_id, password=password, actor=None)
        invitation.used_at = moment
        invitation.save(update_fields=["used_at"])
        if invitation.kind == Invitation.Kind.PATIENT_PORTAL:
            patient_id = (
                Patient.objects.filter(user_id=invitation.user_id)
                .values_list("pk", flat=True)
                .first()
            )
            audit_record(
                actor=user,
                action=AuditEvent.Action.UPDATE,
                resource_type="PortalInvitation",
                resource_id=invitation.pk,
                patient_id=patient_id,
                purpose=AuditEvent.Purpose.ADMINISTRATION,
                entry_point=AuditEvent.EntryPoint.WEB,
                client_address=client_address,
                detail={"portal_account": invitation.user_id, "accepted": True},
            )
    return user
