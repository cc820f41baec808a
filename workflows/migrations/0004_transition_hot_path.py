"""The tables a transition writes, tuned for it.

- History: the instance foreign key loses its own index; the unique (instance, revision)
  index already serves every lookup by instance, and each transition inserts one index
  entry fewer.
- Instances (PostgreSQL): every transition updates its instance's row. Packed full pages
  leave no room for the new row version on the same page, so the update cannot be HOT: it
  adds an entry to each of the table's five indexes and leaves dead entries that later
  lookups wade through (in the benchmark, 3 % of updates were HOT and a transition read
  ~100 heap pages). With half of each page kept free, almost all are HOT (99 %, ~17 pages).
  The setting applies to pages written from now on; `VACUUM FULL workflows_pathwayinstance`
  rewrites existing ones.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INSTANCE_FILLFACTOR = 50
# The name Django gave the foreign key's index (0001_initial), the same on every backend.
HISTORY_INSTANCE_INDEX = "workflows_historyentry_instance_id_f8af9bf9"


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Only the index goes: Django's AlterField would also drop and re-add the foreign key,
    # which re-checks every history row under lock.
    schema_editor.execute(f"DROP INDEX IF EXISTS {HISTORY_INSTANCE_INDEX}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE workflows_pathwayinstance SET (fillfactor = {INSTANCE_FILLFACTOR})"
        )


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute(
        f"CREATE INDEX {HISTORY_INSTANCE_INDEX} ON workflows_historyentry (instance_id)"
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE workflows_pathwayinstance RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0003_instance_subject")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="historyentry",
                    name="instance",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="history",
                        to="workflows.pathwayinstance",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
