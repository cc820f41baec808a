"""Readiness of the parts a request depends on: database, broker and channel layer.

The checks run at the same time, each in a thread of its own, and the answer never waits
more than DEADLINE_SECONDS for them: a probe must answer quickly precisely when something is
down (a load balancer takes an unanswered probe for a dead process). What failed is named by
its kind only (the probe is public); the full error goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, connections

from config.celery import app

logger = logging.getLogger(__name__)

DEADLINE_SECONDS = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    millis: float


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def roundtrip() -> None:
        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        if message.get("type") != "health.ping":
            raise RuntimeError("channel layer returned another message")

    async_to_sync(roundtrip)()
    return type(layer).__name__


def check_broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return (
            conn.transport_cls
            if isinstance(conn.transport_cls, str)
            else str(settings.CELERY_BROKER_URL).split(":", 1)[0]
        )


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        logger.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
        detail, ok = type(exc).__name__, False
    finally:
        connections.close_all()  # this thread's, back to the pool
    return CheckResult(name, ok, detail, (time.perf_counter() - started) * 1000)


def run_checks() -> list[CheckResult]:
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    started = time.perf_counter()
    futures = {name: pool.submit(_timed, name, check) for name, check in CHECKS.items()}
    results = []
    for name, future in futures.items():
        left = max(0.0, DEADLINE_SECONDS - (time.perf_counter() - started))
        try:
            results.append(future.result(timeout=left))
        except FutureTimeout:
            logger.warning("health check %s gave no answer within %s s", name, DEADLINE_SECONDS)
            results.append(CheckResult(name, False, "no answer in time", DEADLINE_SECONDS * 1000))
    pool.shutdown(wait=False)  # a check still waiting ends on its own timeout
    return results
