
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.content_types import content_types_moved


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('coordination', '0015_task_risk_rank'),
        ('patients', '0005_audit_keyed_chain'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='WebhookSubscription',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500, verbose_name='URL')),
                        ('event_types', models.JSONField(default=list, verbose_name='event types')),
                        ('secret', models.CharField(max_length=128)),
                        ('active', models.BooleanField(default=True)),
                        ('description', models.CharField(blank=True, max_length=200, verbose_name='description')),
                        ('created_at', models.DateTimeField()),
                        ('version', models.PositiveIntegerField(default=1)),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='webhook_subscriptions', to=settings.AUTH_USER_MODEL)),
                        ('patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='patients.patient')),
                    ],
                    options={
                        'db_table': 'coordination_webhooksubscription',
                    },
                ),
                migrations.CreateModel(
                    name='OutboxEvent',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('type', models.CharField(max_length=63)),
                        ('occurred_at', models.DateTimeField()),
                        ('payload', models.JSONField(default=dict)),
                        ('position', models.BigIntegerField(blank=True, null=True, unique=True)),
                        ('sequenced_at', models.DateTimeField(blank=True, null=True)),
                        ('published_at', models.DateTimeField(blank=True, null=True)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='patients.patient')),
                    ],
                    options={
                        'db_table': 'coordination_outboxevent',
                        'indexes': [models.Index(condition=models.Q(('position__isnull', True)), fields=['id'], name='outbox_unsequenced'), models.Index(condition=models.Q(('position__isnull', False), ('published_at__isnull', True)), fields=['position'], name='outbox_unpublished'), models.Index(fields=['patient', 'position'], name='outbox_patient_position')],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_id', models.BigIntegerField()),
                        ('position', models.BigIntegerField(blank=True, null=True)),
                        ('event_type', models.CharField(max_length=64)),
                        ('body', models.TextField()),
                        ('status', models.CharField(choices=[('pending', 'pending'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('dropped', 'dropped')], default='pending', max_length=16)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('last_error', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField()),
                        ('replays', models.PositiveSmallIntegerField(default=0)),
                        ('replayed_at', models.DateTimeField(blank=True, null=True)),
                        ('replayed_by', models.CharField(blank=True, max_length=150)),
                        ('patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='patients.patient')),
                        ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='live.webhooksubscription')),
                    ],
                    options={
                        'db_table': 'coordination_webhookdelivery',
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='webhook_delivery_due')],
                        'constraints': [models.UniqueConstraint(fields=('subscription', 'event_id'), name='webhook_delivery_event_unique')],
                    },
                ),
    ],
        ),
        content_types_moved('coordination', 'live', ['webhooksubscription', 'webhookdelivery', 'outboxevent']),
    ]
