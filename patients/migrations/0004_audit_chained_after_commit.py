"""Audit records are chained after commit (patients.services.audit_chain_extend): `seq`,
`prev_hash` and `hash` are empty until then, and on PostgreSQL the append-only trigger lets
exactly one UPDATE through per record: the one that sets them, changing nothing else.
DELETE and every other UPDATE are still refused.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# Every column but the three the chainer sets.
RECORD = (
    "id, occurred_at, actor_id, actor_label, action, resource_type, resource_id, patient_id, "
    "purpose, outcome, entry_point, client_address, detail"
)
NEW_RECORD = ", ".join(f"NEW.{c.strip()}" for c in RECORD.split(","))
OLD_RECORD = ", ".join(f"OLD.{c.strip()}" for c in RECORD.split(","))

FORWARD = f"""
CREATE OR REPLACE FUNCTION patients_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
            AND NEW.prev_hash <> '' AND NEW.hash <> ''
            AND ROW({NEW_RECORD}) IS NOT DISTINCT FROM ROW({OLD_RECORD}) THEN
        RETURN NEW;  -- chaining a record: once, and nothing else changes
    END IF;
    -- Message built by concatenation: a literal percent sign would be taken for a
    -- query placeholder by the driver.
    RAISE EXCEPTION USING
        MESSAGE = 'patients_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION patients_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'patients_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0003_break_glass_grant'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': ['id']},
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['id'], name='audit_unchained'),
        ),
        migrations.RunPython(forward, backward),
    ]
