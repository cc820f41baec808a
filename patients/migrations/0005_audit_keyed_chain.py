"""The audit chain is keyed (patients.chain_keys): a record names the key that hashed it in
`key_id`, set by the chaining UPDATE with `seq`, `prev_hash` and `hash`.

Records chained before stay as they are, with an empty `key_id`, and are verified by the
unkeyed recipe: rehashing them would rewrite the very history the chain vouches for (and
would launder any change made to them before). The first keyed record's HMAC covers the hash
of the last of them, and checkpoints record where keyed hashing began (docs/audit.md).

On PostgreSQL the append-only trigger now also requires the chaining UPDATE to set `key_id`
(a process still running the unkeyed chainer during an upgrade cannot chain a record after a
keyed one), and TRUNCATE is refused too (row triggers do not see it), except to superusers:
they can disable any trigger anyway, and the test suite's flushes run as one.

It cannot be unapplied once a record has been chained with a key: dropping `key_id` would
make those records unverifiable for good.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# Every column but the four the chainer sets.
RECORD = (
    "id, occurred_at, actor_id, actor_label, action, resource_type, resource_id, patient_id, "
    "purpose, outcome, entry_point, client_address, detail"
)
NEW_RECORD = ", ".join(f"NEW.{c.strip()}" for c in RECORD.split(","))
OLD_RECORD = ", ".join(f"OLD.{c.strip()}" for c in RECORD.split(","))

FORWARD = f"""
CREATE OR REPLACE FUNCTION patients_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
                AND NEW.prev_hash <> '' AND NEW.hash <> '' AND NEW.key_id <> ''
                AND ROW({NEW_RECORD}) IS NOT DISTINCT FROM ROW({OLD_RECORD}) THEN
            RETURN NEW;  -- chaining a record: once, with a key, and nothing else changes
        END IF;
    END IF;
    -- Message built by concatenation: a literal percent sign would be taken for a
    -- query placeholder by the driver.
    RAISE EXCEPTION USING
        MESSAGE = 'patients_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION patients_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_user AND rolsuper) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'patients_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER patients_audit_no_truncate
    BEFORE TRUNCATE ON patients_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION patients_audit_no_truncate();
"""

# The function as migration 0004 left it.
BACKWARD = f"""
DROP TRIGGER IF EXISTS patients_audit_no_truncate ON patients_auditevent;
DROP FUNCTION IF EXISTS patients_audit_no_truncate();
CREATE OR REPLACE FUNCTION patients_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
            AND NEW.prev_hash <> '' AND NEW.hash <> ''
            AND ROW({NEW_RECORD}) IS NOT DISTINCT FROM ROW({OLD_RECORD}) THEN
        RETURN NEW;
    END IF;
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
    # Dropping `key_id` would erase which key hashed each keyed record: none of them could be
    # verified again, and re-applying this migration would not bring the ids back.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patients_auditevent WHERE key_id <> ''")
        (keyed,) = cursor.fetchone()
    if keyed:
        raise RuntimeError(
            f"{keyed} audit records are hashed with a key: unapplying "
            "patients.0005_audit_keyed_chain would erase their key ids, and they could never "
            "be verified again. Refused."
        )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0004_audit_chained_after_commit'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
        migrations.RunPython(forward, backward),
    ]
