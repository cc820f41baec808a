"""knox's token model is swapped for api.ApiToken; its migrations are replaced by
api/knox_migrations, which create no table for it and drop the one knox's own
migrations left in older databases."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

SQUASHED = ("knox", "0001_squashed_0009_swapped")
DROP = ("knox", "0010_drop_unused_table")
KNOX_OWN = [
    "0001_initial", "0002_auto_20150916_1425", "0003_auto_20150916_1526",
    "0004_authtoken_expires", "0005_authtoken_token_key", "0006_auto_20160818_0932",
    "0007_auto_20190111_0542", "0008_remove_authtoken_salt", "0009_extend_authtoken_field",
]  # fmt: skip


def test_the_models_and_the_migrations_agree(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits 1 otherwise


def test_migrating_creates_no_table_for_the_swapped_model(db):
    assert "knox_authtoken" not in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True)
def test_a_database_migrated_by_knox_s_own_migrations_loses_their_table_and_keeps_its_history():
    # The database as knox's own migrations left it: their table, their records.
    MigrationExecutor(connection).migrate([SQUASHED])  # back before the drop
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied(*SQUASHED)
    for name in KNOX_OWN:
        recorder.record_applied("knox", name)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE knox_authtoken (digest varchar(128) PRIMARY KEY, "
            "user_id integer NOT NULL REFERENCES auth_user (id))"
        )
    assert SQUASHED in MigrationLoader(connection).applied_migrations  # as knox's 0001-0009

    MigrationExecutor(connection).migrate([DROP])

    assert "knox_authtoken" not in connection.introspection.table_names()
    call_command("flush", "--no-input", verbosity=0)  # what the orphan table made fail
