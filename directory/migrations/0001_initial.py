
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.content_types import content_types_moved


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('coordination', '0015_task_risk_rank'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('patients', '0005_audit_keyed_chain'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are (db_table): only Django's view of the models moves.
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Organization',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200, verbose_name='name')),
                        ('kind', models.CharField(choices=[('hospital', 'hospital'), ('practice', 'medical practice'), ('health_centre', 'health centre'), ('home_care', 'home care service'), ('pharmacy', 'pharmacy'), ('laboratory', 'laboratory'), ('platform', 'regional health platform'), ('other', 'other')], max_length=16, verbose_name='kind')),
                        ('finess', models.CharField(blank=True, max_length=9, verbose_name='FINESS number')),
                        ('created_at', models.DateTimeField()),
                        ('version', models.PositiveIntegerField(default=1)),
                    ],
                    options={
                        'db_table': 'coordination_organization',
                    },
                ),
                migrations.CreateModel(
                    name='CareTeam',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField()),
                        ('version', models.PositiveIntegerField(default=1)),
                        ('patient', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='care_team', to='patients.patient')),
                    ],
                    options={
                        'db_table': 'coordination_careteam',
                    },
                ),
                migrations.CreateModel(
                    name='Practitioner',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('profession', models.CharField(choices=[('gp', 'general practitioner'), ('specialist', 'specialist physician'), ('nurse', 'nurse'), ('coordinator', 'care coordinator'), ('pharmacist', 'pharmacist'), ('physiotherapist', 'physiotherapist'), ('midwife', 'midwife'), ('dentist', 'dentist'), ('podiatrist', 'podiatrist'), ('dietitian', 'dietitian'), ('psychologist', 'psychologist'), ('other', 'other')], max_length=24, verbose_name='profession')),
                        ('specialty', models.CharField(blank=True, max_length=100, verbose_name='specialty')),
                        ('rpps', models.CharField(blank=True, max_length=11, verbose_name='RPPS number')),
                        ('active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField()),
                        ('version', models.PositiveIntegerField(default=1)),
                        ('organization', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='practitioners', to='directory.organization')),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='practitioner', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'coordination_practitioner',
                    },
                ),
                migrations.CreateModel(
                    name='ServiceTeam',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200, verbose_name='name')),
                        ('roles', models.JSONField(blank=True, default=list, help_text='Roles the team can take.', verbose_name='pathway roles')),
                        ('created_at', models.DateTimeField()),
                        ('version', models.PositiveIntegerField(default=1)),
                        ('group', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='service_team', to='auth.group')),
                        ('organization', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='teams', to='directory.organization')),
                    ],
                    options={
                        'db_table': 'coordination_serviceteam',
                    },
                ),
                migrations.CreateModel(
                    name='CareTeamMember',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('role', models.CharField(max_length=63, verbose_name='pathway role')),
                        ('active', models.BooleanField(default=True)),
                        ('since', models.DateTimeField()),
                        ('until', models.DateTimeField(blank=True, null=True)),
                        ('care_team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='members', to='directory.careteam')),
                        ('practitioner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='care_roles', to='directory.practitioner')),
                        ('service_team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='care_roles', to='directory.serviceteam')),
                    ],
                    options={
                        'db_table': 'coordination_careteammember',
                    },
                ),
                migrations.CreateModel(
                    name='ServiceTeamMembership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('since', models.DateTimeField()),
                        ('practitioner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='team_memberships', to='directory.practitioner')),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='directory.serviceteam')),
                    ],
                    options={
                        'db_table': 'coordination_serviceteammembership',
                    },
                ),
                migrations.AddConstraint(
                    model_name='practitioner',
                    constraint=models.UniqueConstraint(condition=models.Q(('rpps', ''), _negated=True), fields=('rpps',), name='practitioner_rpps_unique'),
                ),
                migrations.AddConstraint(
                    model_name='practitioner',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('profession', 'specialist'), _negated=True), models.Q(('specialty', ''), _negated=True), _connector='OR'), name='practitioner_specialist_has_specialty'),
                ),
                migrations.AddIndex(
                    model_name='careteammember',
                    index=models.Index(fields=['care_team', 'role'], name='care_member_role'),
                ),
                migrations.AddConstraint(
                    model_name='careteammember',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('practitioner__isnull', False), ('service_team__isnull', True)), models.Q(('practitioner__isnull', True), ('service_team__isnull', False)), _connector='OR'), name='care_team_member_is_one_party'),
                ),
                migrations.AddConstraint(
                    model_name='careteammember',
                    constraint=models.UniqueConstraint(condition=models.Q(('active', True), ('practitioner__isnull', False)), fields=('care_team', 'practitioner', 'role'), name='care_team_practitioner_role_unique'),
                ),
                migrations.AddConstraint(
                    model_name='careteammember',
                    constraint=models.UniqueConstraint(condition=models.Q(('active', True), ('service_team__isnull', False)), fields=('care_team', 'service_team', 'role'), name='care_team_service_team_role_unique'),
                ),
                migrations.AddConstraint(
                    model_name='serviceteammembership',
                    constraint=models.UniqueConstraint(fields=('team', 'practitioner'), name='team_member_unique'),
                ),
    ],
        ),
        content_types_moved('coordination', 'directory', ['organization', 'practitioner', 'serviceteam', 'serviceteammembership', 'careteam', 'careteammember']),
    ]
