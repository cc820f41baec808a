"""API rates: per platform client, per user, per anonymous address, counted in the shared
cache; beyond its rate a caller gets 429 problem+json with Retry-After, others are not
affected."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from api.services.api_tokens import api_token_create
from api.throttling import parse_rate
from tests.api.test_security_oauth import make_platform, organization, token_of  # noqa: F401
from tests.coordination.conftest import Scene

RATES = {"platform": "3/minute", "user": "3/minute", "anonymous": "2/minute"}


@pytest.fixture(params=["local-memory", "redis"])
def rates(request: pytest.FixtureRequest) -> Iterator[None]:
    """Low rates, counted in a cache of this test's own (a Redis key prefix of its own)."""
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("needs Redis: set REDIS_URL=redis://... (CI does)")
        cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                 "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"}  # fmt: skip
    else:
        cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                 "LOCATION": f"throttle-test-{uuid.uuid4().hex}"}  # fmt: skip
    with override_settings(API_THROTTLE_RATES=RATES, CACHES={"default": cache}):
        yield


def token_client(user) -> Client:
    secret = api_token_create(user=user, name="rate", actor=user, lifetime=None).secret
    return Client(HTTP_AUTHORIZATION=f"Token {secret}")


def test_a_user_beyond_its_rate_gets_429_with_retry_after_and_others_do_not(
    scene: Scene, rates: None
):
    nurse, gp = token_client(scene.nurse.user), token_client(scene.gp.user)

    answers = [nurse.get("/api/v1/tasks/").status_code for _ in range(3)]
    refused = nurse.get("/api/v1/tasks/")
    other = gp.get("/api/v1/tasks/")

    assert answers == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/throttled")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert other.status_code == 200


def test_a_platform_is_counted_per_client(scene: Scene, rates: None, organization):  # noqa: F811
    first, second = make_platform(organization, "first"), make_platform(organization, "second")
    one = Client(HTTP_AUTHORIZATION=f"Bearer {token_of(first)}")
    two = Client(HTTP_AUTHORIZATION=f"Bearer {token_of(second)}")

    answers = [one.get("/api/v1/patients/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    assert two.get("/api/v1/patients/").status_code == 200


class Open(APIView):
    permission_classes = [AllowAny]

    def get(self, request: object) -> Response:
        return Response({})


def test_anonymous_callers_are_counted_per_address(db, rates: None):
    factory, view = APIRequestFactory(), Open.as_view()

    here = [view(factory.get("/", REMOTE_ADDR="192.0.2.1")).status_code for _ in range(3)]
    elsewhere = view(factory.get("/", REMOTE_ADDR="192.0.2.2")).status_code

    assert here == [200, 200, 429]
    assert elsewhere == 200


def test_a_rate_that_is_not_one_is_refused_naming_it():
    assert parse_rate("600/minute") == (600, 60)
    assert parse_rate("10/s") == (10, 1)
    with pytest.raises(ValueError, match="'lots' is not a rate such as 600/minute"):
        parse_rate("lots")
