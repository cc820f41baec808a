"""Every list the API answers is cursor-paginated.

The routes are read from the URL configuration, as in the BOLA matrix: each GET route under
/api/v1/ is called as a member of P's care team (the GP) in the BOLA world, and a bare JSON
array is a list that escaped pagination. A new list route is checked without anyone adding
it here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import get_resolver
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.test import APIClient

from api.pagination import Cursor
from tests.api.test_bola import (
    API_PREFIX,
    Route,
    World,
    _methods,
    _slug,
    _walk,
    build_url,
    query_for,
    world,
)

__all__ = ["world"]

# Computed from the pathway definition for the caller, not a collection stored anywhere: a
# handful of transitions at most, with no order a cursor could follow.
NOT_A_COLLECTION = {"api/v1/pathways/<int:pk>/available-events/"}


def _get_routes() -> list[tuple[Route, Any]]:
    found = []
    for pattern, names, entry in _walk(get_resolver().url_patterns, "", ()):
        if not pattern.startswith(API_PREFIX):
            continue
        route = Route(pattern, names, _methods(entry))
        if "get" in route.methods:
            found.append((route, getattr(entry.callback, "view_class", None)))
    return sorted(found, key=lambda r: r[0].pattern)


GET_ROUTES = _get_routes()


def test_the_lists_are_found():
    patterns = {r.pattern for r, _ in GET_ROUTES}

    assert {
        "api/v1/pathway-definitions/",
        "api/v1/patients/<int:pk>/consents/",
        "api/v1/pathways/<int:pk>/history/",
        "api/v1/tokens/",
    } <= patterns


@pytest.mark.parametrize(
    ("route", "view"), GET_ROUTES, ids=[_slug(r.path) or "root" for r, _ in GET_ROUTES]
)
def test_every_list_view_paginates_with_a_cursor(route: Route, view: type) -> None:
    if isinstance(view, type) and issubclass(view, ListAPIView):
        paginator = view.pagination_class
        assert paginator is not None, route.pattern
        assert issubclass(paginator, CursorPagination), route.pattern
        # Keyset cursors (api.pagination), not DRF's offset-capped ones.
        assert issubclass(paginator, Cursor), route.pattern


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r, _ in GET_ROUTES], ids=[_slug(r.path) or "root" for r, _ in GET_ROUTES]
)
def test_no_route_answers_a_bare_list(world: World, route: Route) -> None:
    client = APIClient()
    client.force_authenticate(world.gp)

    response = client.get(build_url(route, world, world.p), query_for(route))

    assert response.status_code == 200, f"{route.pattern}: {response.status_code}"
    if not response["Content-Type"].startswith("application/json"):
        return  # diagrams
    body = response.json()
    if route.pattern in NOT_A_COLLECTION:
        assert isinstance(body, list)
        return
    assert not isinstance(body, list), f"{route.pattern} answers an unpaginated list"
    if "results" in body:
        assert set(body) == {"next", "previous", "results"}, route.pattern
