"""The OAuth2 authorisation server under `/o/`, for platforms: the token endpoint (client
credentials only), revocation (RFC 7009) and introspection (RFC 7662). Nothing else of
django-oauth-toolkit is served: no authorisation endpoint, no application registration or
management pages, no device flow, no OpenID Connect, no dynamic client registration. Platform
clients are created by `platform_client_create` only.

Every endpoint authenticates the client (HTTP Basic, or `client_id` and `client_secret` in
the body) and answers `invalid_client` (401) to anything but an active platform's
application (api.oauth2.ParcoursOAuth2Validator). A grant other than `client_credentials` is
`unsupported_grant_type` (400). Revocation and introspection concern the calling client's
own tokens only.
"""

from __future__ import annotations

from typing import Any, cast

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views
from oauth2_provider.oauth2_backends import OAuthLibCore

from api.oauth2 import ParcoursOAuthLibCore, claimed_client_id, oauthlib_core
from api.services.platforms import token_issued_record

MAX_CLIENT_ID = 100  # the toolkit's column


class _SharedCore:
    @classmethod
    def get_oauthlib_core(cls) -> OAuthLibCore:
        # The process's one server (api.oauth2), rather than one cached per view class.
        return oauthlib_core()


class TokenView(_SharedCore, views.TokenView):
    """The token endpoint, with the login protections of the web's login page: a client id
    that failed LOGIN_FAILURE_LIMIT times from one address is locked out for a while
    (django-axes, counting the `user_login_failed` signal sent here), and every issued token
    and every failed client authentication is in the audit trail (web.login_audit records
    the failures)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client_id = client_id_of(request)
        credentials = {"username": client_id}
        if client_id and AxesProxyHandler.is_locked(request, credentials):
            return locked_out(request)
        # The toolkit's view hands device-code requests to a flow of their own; here every
        # request goes to the server, which knows the client-credentials grant only.
        response = cast(HttpResponse, self.authorization_flow_token_response(request))
        if response.status_code == 401 and client_id:  # invalid_client
            user_login_failed.send(sender=type(self), credentials=credentials, request=request)
        elif response.status_code == 200:
            AxesProxyHandler.reset_attempts(
                ip_address=get_client_ip_address(request), username=client_id
            )
            token_issued_record(client_id=client_id, client_address=request.META.get("REMOTE_ADDR"))
        return response


def client_id_of(request: HttpRequest) -> str:
    """The client id a token request authenticates with (at most the column's length)."""
    claimed = claimed_client_id(
        request.META.get("HTTP_AUTHORIZATION", ""), request.POST.get("client_id")
    )
    return claimed[:MAX_CLIENT_ID]


def locked_out(request: HttpRequest) -> HttpResponse:
    """The token endpoint's answer while the client id is locked out: an OAuth2 error
    (RFC 6749 section 5.2) with 429 and the time to wait."""
    wait = int(settings.AXES_COOLOFF_TIME.total_seconds())
    body = {
        "error": "invalid_client",
        "error_description": _("too many failed attempts: try again in %(wait)d seconds")
        % {"wait": wait},
    }
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(wait)
    response["Cache-Control"] = "no-store"
    return response


class RevokeTokenView(_SharedCore, views.RevokeTokenView):
    pass


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class IntrospectTokenView(View):
    """POST only: a token in a query string ends up in logs (RFC 7662 section 4)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        core = cast(ParcoursOAuthLibCore, oauthlib_core())
        _, headers, body, status = core.create_introspection_response(request)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response


app_name = "oauth2_provider"  # the toolkit reverses its routes in this namespace

urlpatterns: list[URLPattern] = [
    path("token/", TokenView.as_view(), name="token"),
    path("revoke_token/", RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", IntrospectTokenView.as_view(), name="introspect"),
]
