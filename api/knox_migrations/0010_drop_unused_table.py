# knox's own migrations created its default token table although the model is swapped: a table
# nothing reads, referencing the users (it made flushing the database fail). Dropped where it
# exists; nothing to undo.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knox", "0001_squashed_0009_swapped")]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS knox_authtoken", migrations.RunSQL.noop),
    ]
