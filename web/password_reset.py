"""Forgotten passwords: Django's reset pages (an e-mailed single-use link, valid
PASSWORD_RESET_TIMEOUT), with

- the same answer whether or not the address belongs to an account (no enumeration): the
  "e-mail sent" page either way;
- a rate per requesting address (PASSWORD_RESET_RATE_ADDRESS, beyond it 429) and per
  account (PASSWORD_RESET_RATE_ACCOUNT, beyond it nothing is sent, the page the same);
- the new password saved through directory.services.accounts.account_password_set, like
  every password change: the account's API tokens revoked, its other sessions ended;
- the e-mail in the language of the page it was asked from, its link to PARCOURS_PUBLIC_URL
  when set.

Django sends no link to an inactive account or one without a usable password (an invited
account that has not set one yet: its invitation is the way in).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy
from django.utils.translation import gettext_noop

from directory.services.accounts import account_password_set
from web.errors import error_page

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "10/hour" -> (10, 3600)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()]


def within_rate(key: str, rate: str) -> bool:
    """Count one more use of `key` in its current window; False past the rate."""
    limit, seconds = parse_rate(rate)
    cache_key = f"parcours:password-reset:{key}"
    cache.add(cache_key, 0, timeout=seconds)
    try:
        used = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=seconds)
        used = 1
    return used <= limit


class ThrottledPasswordResetForm(PasswordResetForm):
    def get_users(self, email: str) -> Iterator[Any]:
        for user in super().get_users(email):
            if within_rate(f"account:{user.pk}", settings.PASSWORD_RESET_RATE_ACCOUNT):
                yield user


class ServiceSetPasswordForm(SetPasswordForm):  # type: ignore[type-arg]
    """The new password saved by the service (tokens revoked, other sessions ended)."""

    def save(self, commit: bool = True) -> Any:
        return account_password_set(
            user_id=self.user.pk, password=self.cleaned_data["new_password1"], actor=self.user
        )


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "web/password_reset_form.html"
    email_template_name = "web/email/password_reset.txt"
    subject_template_name = "web/email/password_reset_subject.txt"
    form_class = ThrottledPasswordResetForm
    success_url = reverse_lazy("web:password-reset-done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = request.META.get("REMOTE_ADDR") or "unknown"
        if not within_rate(f"address:{address}", settings.PASSWORD_RESET_RATE_ADDRESS):
            _, seconds = parse_rate(settings.PASSWORD_RESET_RATE_ADDRESS)
            response = error_page(
                request,
                status=429,
                title=gettext_noop("Too many requests"),
                message=gettext_noop(
                    "Too many password resets were asked from here. Wait a while before "
                    "trying again."
                ),
            )
            response["Retry-After"] = str(seconds)
            return response
        base = settings.PARCOURS_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
        self.extra_email_context = {"base_url": base}
        return super().post(request, *args, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/password_reset_confirm.html"
    form_class = ServiceSetPasswordForm
    success_url = reverse_lazy("web:password-reset-complete")


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="web/password_reset_done.html"
)
password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="web/password_reset_complete.html"
)
