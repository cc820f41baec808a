
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.content_types import content_types_moved


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('api', '0001_initial'),
        ('directory', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.AddField(
                    model_name='platformaccount',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='platform_accounts', to='directory.organization'),
                ),
                migrations.AddField(
                    model_name='platformaccount',
                    name='user',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='platform_account', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AddConstraint(
                    model_name='apitoken',
                    constraint=models.UniqueConstraint(fields=('user', 'name'), name='api_token_user_name_unique'),
                ),
    ],
        ),
        content_types_moved('coordination', 'api', ['idempotencyrecord', 'platformaccount', 'apitoken']),
    ]
