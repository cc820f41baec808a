# knox's migrations 0001 to 0009 as one, with the model declared swappable: it is swapped for
# api.ApiToken (KNOX_TOKEN_MODEL), so this creates no table. A database that applied
# knox's own migrations has them recorded, and this one counts as applied there.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    replaces = [
        ("knox", "0001_initial"),
        ("knox", "0002_auto_20150916_1425"),
        ("knox", "0003_auto_20150916_1526"),
        ("knox", "0004_authtoken_expires"),
        ("knox", "0005_authtoken_token_key"),
        ("knox", "0006_auto_20160818_0932"),
        ("knox", "0007_auto_20190111_0542"),
        ("knox", "0008_remove_authtoken_salt"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthToken",
            fields=[
                ("digest", models.CharField(max_length=128, primary_key=True, serialize=False)),
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "swappable": "KNOX_TOKEN_MODEL",
            },
        ),
    ]
