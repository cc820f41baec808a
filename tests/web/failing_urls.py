"""The site's URLconf with routes that fail, for the error-page tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler404, handler500
from config.urls import urlpatterns as site


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a failure the error page must not show: SECRET-DETAIL")


urlpatterns = [path("failing/", fail), path("api/v1/failing/", fail), *site]

__all__ = ["handler404", "handler500", "urlpatterns"]
