
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('coordination', '0015_task_risk_rank'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='PlatformAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scopes', models.JSONField(default=list, verbose_name='OAuth scopes')),
                        ('created_at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'coordination_platformaccount',
                    },
                ),
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('digest', models.CharField(max_length=128, primary_key=True, serialize=False)),
                        ('token_key', models.CharField(db_index=True, max_length=25)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('expiry', models.DateTimeField(blank=True, null=True)),
                        ('name', models.CharField(max_length=100, verbose_name='name')),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('can_create_tokens', models.BooleanField(default=False, verbose_name='may create tokens')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_token_set', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'coordination_apitoken',
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('owner', models.CharField(max_length=150)),
                        ('key', models.CharField(max_length=255)),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('body', models.JSONField(blank=True, null=True)),
                        ('headers', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'coordination_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('owner', 'key'), name='idempotency_owner_key_unique')],
                    },
                ),
    ],
        ),
    ]
