from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # OAuth2 for platforms: token, revocation and introspection only (api.oauth2_endpoints).
    path("o/", include("api.oauth2_endpoints", namespace="oauth2_provider")),
    path("", include("web.urls")),
]

# problem+json under /api/, the web UI's plain page elsewhere (never a traceback).
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
