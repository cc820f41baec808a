"""What the benchmarks share: the PostgreSQL server and their own databases on it, Django
set-up, the pgbench reference (TPC-B-like, 4 clients) and the figures' arithmetic.

Each benchmark creates and drops its own databases (names given by the caller) on the
server named by DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def psql_admin(url: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", with_database(url, "postgres"), "-c", sql],
        check=True,
        capture_output=True,
    )


@contextmanager
def fresh_databases(url: str, *names: str) -> Iterator[None]:
    """Create the databases empty, and drop them afterwards whatever happens."""
    for name in names:
        psql_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        psql_admin(url, f"CREATE DATABASE {name}")
    try:
        yield
    finally:
        close_django_connections()
        for name in names:
            psql_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(db_url: str) -> None:
    """Django on `db_url` with the local settings, DEBUG off (as served in production: no
    query log kept in memory), quiet logs."""
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "false"
    import django

    django.setup()


def close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def require_pgbench() -> None:
    if shutil.which("pgbench") is None:
        sys.exit("pgbench is not on the PATH (Debian: postgresql-client)")


def init_pgbench(url: str, name: str) -> None:
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", "10", with_database(url, name)],
        check=True,
        capture_output=True,
        text=True,
    )


def measure_pgbench(url: str, name: str, seconds: float) -> float:
    """TPS of pgbench's TPC-B-like script, 4 clients, 4 threads, for `seconds`."""
    result = subprocess.run(
        ["pgbench", "-n", "-c", "4", "-j", "4", "-T", str(int(seconds)), with_database(url, name)],
        check=True,
        capture_output=True,
        text=True,
    )
    pattern = r"tps = ([\d.]+) \((?:without initial connection time|excluding)"
    match = re.search(pattern, result.stdout)
    if not match:
        raise RuntimeError(f"cannot read pgbench output:\n{result.stdout}")
    return float(match.group(1))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `values`: p95 is percentile(v, 0.95)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil, at least the first
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
