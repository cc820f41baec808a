"""OpenAPI descriptions of the API's own authentication classes (drf-spectacular
extensions, registered when the api app is ready)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from api.scopes import scope_family


class PlatformOAuth2Scheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "api.authentication.PlatformOAuth2Authentication"
    name = "platformOAuth2"

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]] | list[Any]:
        family = scope_family(auto_schema.path.lstrip("/"))
        if family is None:
            return []  # not reachable with OAuth2 tokens
        access = "read" if auto_schema.method in ("GET", "HEAD", "OPTIONS") else "write"
        return {self.name: [f"{family}:{access}"]}

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scopes = cast(dict[str, str], settings.OAUTH2_PROVIDER["SCOPES"])
        return {
            "type": "oauth2",
            "description": "Platforms: client credentials; see the README (Platforms).",
            "flows": {"clientCredentials": {"tokenUrl": "/o/token/", "scopes": scopes}},
        }


class PersonalTokenScheme(KnoxTokenScheme):  # type: ignore[no-untyped-call]
    target_class = "api.authentication.PersonalTokenAuthentication"
    name = "personalToken"
