
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('coordination', '0015_task_risk_rank'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='apitoken',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='careteam',
                    name='patient',
                ),
    ],
        ),
    ]
