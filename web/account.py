"""The signed-in user's own account: changing their password.

A new password ends the user's other sessions and revokes every API token they hold
(directory.services.accounts.account_password_set); the session that changed it goes on.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from core.errors import InvalidInput
from directory.services.accounts import account_password_set


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's page (signed-in users only, the current password asked, the validators of
    AUTH_PASSWORD_VALIDATORS), saved through the service."""

    template_name = "web/password_change.html"
    success_url = reverse_lazy("web:home")

    def form_valid(self, form: Any) -> HttpResponse:
        user_id = self.request.user.pk
        assert user_id is not None  # PasswordChangeView serves signed-in users only
        try:
            user = account_password_set(
                user_id=int(user_id),
                password=form.cleaned_data["new_password1"],
                actor=self.request.user,  # type: ignore[arg-type]
            )
        except InvalidInput as error:
            for problem in error.problems:
                form.add_error("new_password1", problem.message)
            return self.form_invalid(form)
        update_session_auth_hash(self.request, user)  # type: ignore[arg-type]
        messages.success(
            self.request,
            _(
                "Your password has been changed. Your other sessions have been closed and "
                "your API tokens revoked."
            ),
        )
        return redirect(self.get_success_url())


password_change = PasswordChangeView.as_view()
