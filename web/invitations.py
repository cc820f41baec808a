"""The page an invitation e-mail links to (`/invitation/<token>/`): the invited person sets
their password once, and is signed in (a practitioner lands on the worklist, a patient on
the portal). A link that names no invitation is 404; one used, revoked or expired is 410;
neither changes anything. directory.services.invitations holds the rules."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.errors import InvalidInput, NotFound
from directory.services.invitations import (
    InvitationGone,
    invitation_accept,
    invitation_for_token,
)
from web.audit import client_address
from web.errors import error_page

# The session is opened by the password just set, checked by Django's own backend.
LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _unknown(request: HttpRequest) -> HttpResponse:
    return error_page(
        request,
        status=404,
        title=gettext_noop("Invitation not found"),
        message=gettext_noop(
            "This invitation link is not valid. Check that the whole address from the e-mail "
            "was copied, or ask the person who invited you for a new invitation."
        ),
    )


def _gone(request: HttpRequest) -> HttpResponse:
    return error_page(
        request,
        status=410,
        title=gettext_noop("Invitation no longer valid"),
        message=gettext_noop(
            "This invitation link has already been used, has expired or was replaced by a "
            "newer one. If you already chose your password, log in; otherwise ask the person "
            "who invited you for a new invitation."
        ),
    )


def _private(response: HttpResponse) -> HttpResponse:
    # The token is in the address: no other site learns it from a Referer header.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_for_token(token=token)
    except InvitationGone:
        return _private(_gone(request))
    except NotFound:
        return _private(_unknown(request))
    form = SetPasswordForm(invitation.user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(
                token=token,
                password=form.cleaned_data["new_password1"],
                client_address=client_address(request),
            )
        except InvitationGone:
            return _private(_gone(request))
        except NotFound:
            return _private(_unknown(request))
        except InvalidInput as error:
            for problem in error.problems:
                form.add_error("new_password1", problem.message)
        else:
            login(request, user, backend=LOGIN_BACKEND)  # type: ignore[arg-type]
            return redirect("web:home")
    context = {"form": form, "invitation": invitation, "username": invitation.user.get_username()}
    return _private(render(request, "web/invitation.html", context))
