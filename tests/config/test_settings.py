from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import database_settings, email_settings, env_bool

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_EMAIL = {
    "EMAIL_URL": "smtp://parcours:synthetic-password@smtp.example.org:587",
    "DEFAULT_FROM_EMAIL": "Parcours <no-reply@example.org>",
}


def test_production_settings_pass_check_deploy_with_no_warning():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 30 + "production-like-secret-value-0123456789",
        "AUDIT_CHAIN_KEY": "y" * 30 + "production-like-audit-chain-key-0123",
        "AUDIT_CHECKPOINT_DIR": "/var/lib/parcours/audit-checkpoints",
        "ALLOWED_HOSTS": "parcours.example.org",
        **PRODUCTION_EMAIL,
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment in production" in result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"AUDIT_CHAIN_KEY": None}, "AUDIT_CHAIN_KEY must be set in the environment in"),
        ({"AUDIT_CHECKPOINT_DIR": None}, "AUDIT_CHECKPOINT_DIR must be set in the environment"),
        ({"AUDIT_CHECKPOINT_DIR": "var/audit"}, "AUDIT_CHECKPOINT_DIR must be set in the"),
        ({"AUDIT_CHAIN_KEY": "short"}, "AUDIT_CHAIN_KEY: a key must be at least 32 characters"),
        (
            {"AUDIT_CHAIN_KEY_FALLBACKS": "z" * 40 + ",short"},
            "AUDIT_CHAIN_KEY_FALLBACKS: a key must be at least 32 characters",
        ),
    ],
    ids=["no key", "no checkpoint directory", "a relative one", "a short key", "a short one"],
)
def test_production_settings_refuse_to_start_without_a_usable_audit_chain_key_or_checkpoints(
    changes, message
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 30 + "production-like-secret-value-0123456789",
        "AUDIT_CHAIN_KEY": "y" * 30 + "production-like-audit-chain-key-0123",
        "AUDIT_CHECKPOINT_DIR": "/var/lib/parcours/audit-checkpoints",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert message in result.stderr


def test_database_url_selects_postgresql():
    config = database_settings("postgres://user:pw@db.internal:5433/parcours")

    assert (config["ENGINE"], config["HOST"], config["PORT"], config["NAME"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        5433,
        "parcours",
    )


@pytest.mark.parametrize(("raw", "expected"), [(None, 5), ("12", 12), ("0", None)])
def test_postgresql_binds_on_the_server_and_prepares_after_the_threshold(
    monkeypatch, raw, expected
):
    if raw is None:
        monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    else:
        monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", raw)

    options = database_settings("postgres://db.internal/parcours")["OPTIONS"]

    assert isinstance(options, dict)
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == expected


@pytest.mark.parametrize("raw", ["five", "-1"])
def test_a_bad_prepare_threshold_is_refused_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", raw)

    with pytest.raises(ImproperlyConfigured, match="DATABASE_PREPARE_THRESHOLD"):
        database_settings("postgres://db.internal/parcours")


def test_no_database_url_means_the_embedded_sqlite_file_in_wal_mode():
    config = database_settings(None)

    assert config["ENGINE"] == "core.backends.sqlite3"
    options = config["OPTIONS"]
    assert isinstance(options, dict)
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("off", False), ("", True)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)

    assert env_bool("SOME_FLAG", True) is expected


def test_env_bool_rejects_anything_else_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")

    with pytest.raises(ValueError, match="SOME_FLAG must be a boolean"):
        env_bool("SOME_FLAG", False)


def production_check(email: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "DEFAULT_FROM_EMAIL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="x" * 30 + "production-like-secret-value-0123456789",
        AUDIT_CHAIN_KEY="y" * 30 + "production-like-audit-chain-key-0123",
        AUDIT_CHECKPOINT_DIR="/var/lib/parcours/audit-checkpoints",
        ALLOWED_HOSTS="parcours.example.org",
        **email,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ({"EMAIL_URL": "console://"}, "EMAIL_URL must be an smtp:// or smtps:// URL in production"),
        ({"EMAIL_URL": "dummy://"}, "EMAIL_URL must be an smtp:// or smtps:// URL in production"),
        (
            {"EMAIL_URL": PRODUCTION_EMAIL["EMAIL_URL"]},
            "DEFAULT_FROM_EMAIL must be set in the environment in production",
        ),
    ],
    ids=["printed", "dropped", "no sender"],
)
def test_production_settings_refuse_an_e_mail_setup_that_would_lose_mail(email, message):
    result = production_check(email)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_without_email_url_starts_and_check_deploy_warns_that_nothing_is_sent():
    result = production_check({}, "--deploy")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "parcours.W001" in result.stderr + result.stdout
    assert "EMAIL_URL is not set" in result.stderr + result.stdout
    assert production_check({}, "--deploy", "--fail-level", "WARNING").returncode != 0


def test_email_url_names_the_smtp_server_and_its_security():
    submission = email_settings("smtp://parcours%40example.org:s3cret@smtp.example.org")
    relay = email_settings("smtp://relay.internal:25")
    tls = email_settings("smtps://u:p@smtp.example.org")

    assert submission["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (submission["EMAIL_HOST"], submission["EMAIL_PORT"]) == ("smtp.example.org", 587)
    assert submission["EMAIL_HOST_USER"] == "parcours@example.org"
    assert submission["EMAIL_HOST_PASSWORD"] == "s3cret"
    assert (submission["EMAIL_USE_TLS"], submission["EMAIL_USE_SSL"]) == (True, False)
    assert (relay["EMAIL_PORT"], relay["EMAIL_USE_TLS"]) == (25, False)
    assert (tls["EMAIL_PORT"], tls["EMAIL_USE_SSL"], tls["EMAIL_USE_TLS"]) == (465, True, False)
    assert str(email_settings("console://")["EMAIL_BACKEND"]).endswith("console.EmailBackend")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL: the scheme"):
        email_settings("gopher://x")
