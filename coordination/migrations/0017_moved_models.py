
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('coordination', '0016_moved_models_fields'),
        ('directory', '0001_initial'),
        ('live', '0001_initial'),
        ('api', '0002_moved_models_relations'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='carepathway',
                    name='care_team',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='pathways', to='directory.careteam'),
                ),
                migrations.RemoveField(
                    model_name='careteammember',
                    name='care_team',
                ),
                migrations.RemoveField(
                    model_name='careteammember',
                    name='practitioner',
                ),
                migrations.RemoveField(
                    model_name='careteammember',
                    name='service_team',
                ),
                migrations.DeleteModel(
                    name='IdempotencyRecord',
                ),
                migrations.RemoveField(
                    model_name='platformaccount',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='practitioner',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='serviceteam',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='outboxevent',
                    name='patient',
                ),
                migrations.RemoveField(
                    model_name='platformaccount',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='practitioner',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='serviceteammembership',
                    name='practitioner',
                ),
                migrations.AlterField(
                    model_name='task',
                    name='owner',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='tasks', to='directory.practitioner'),
                ),
                migrations.RemoveField(
                    model_name='serviceteam',
                    name='group',
                ),
                migrations.RemoveField(
                    model_name='serviceteammembership',
                    name='team',
                ),
                migrations.AlterField(
                    model_name='task',
                    name='offered_team',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='offered_tasks', to='directory.serviceteam'),
                ),
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='patient',
                ),
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='subscription',
                ),
                migrations.RemoveField(
                    model_name='webhooksubscription',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='webhooksubscription',
                    name='patient',
                ),
                migrations.DeleteModel(
                    name='ApiToken',
                ),
                migrations.DeleteModel(
                    name='CareTeam',
                ),
                migrations.DeleteModel(
                    name='CareTeamMember',
                ),
                migrations.DeleteModel(
                    name='Organization',
                ),
                migrations.DeleteModel(
                    name='OutboxEvent',
                ),
                migrations.DeleteModel(
                    name='PlatformAccount',
                ),
                migrations.DeleteModel(
                    name='Practitioner',
                ),
                migrations.DeleteModel(
                    name='ServiceTeamMembership',
                ),
                migrations.DeleteModel(
                    name='ServiceTeam',
                ),
                migrations.DeleteModel(
                    name='WebhookDelivery',
                ),
                migrations.DeleteModel(
                    name='WebhookSubscription',
                ),
    ],
        ),
    ]
