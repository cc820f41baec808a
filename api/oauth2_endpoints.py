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

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views
from oauth2_provider.oauth2_backends import OAuthLibCore

from api.oauth2 import ParcoursOAuthLibCore, oauthlib_core


class _SharedCore:
    @classmethod
    def get_oauthlib_core(cls) -> OAuthLibCore:
        # The process's one server (api.oauth2), rather than one cached per view class.
        return oauthlib_core()


class TokenView(_SharedCore, views.TokenView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The toolkit's view hands device-code requests to a flow of their own; here every
        # request goes to the server, which knows the client-credentials grant only.
        return cast(HttpResponse, self.authorization_flow_token_response(request))


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
