"""The directory: organisations, practitioners, service teams and each patient's care team.

The tables keep the names they had when these models were coordination's (db_table)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from patients.models import Patient


class Organization(models.Model):
    class Kind(models.TextChoices):
        HOSPITAL = "hospital", _("hospital")
        PRACTICE = "practice", _("medical practice")
        HEALTH_CENTRE = "health_centre", _("health centre")
        HOME_CARE = "home_care", _("home care service")
        PHARMACY = "pharmacy", _("pharmacy")
        LABORATORY = "laboratory", _("laboratory")
        PLATFORM = "platform", _("regional health platform")
        OTHER = "other", _("other")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    finess = models.CharField(_("FINESS number"), max_length=9, blank=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "coordination_organization"

    def __str__(self) -> str:
        return self.name


class Practitioner(models.Model):
    """A professional using Parcours. `rpps` is the 11-digit national identifier (Luhn)."""

    class Profession(models.TextChoices):
        GP = "gp", _("general practitioner")
        SPECIALIST = "specialist", _("specialist physician")
        NURSE = "nurse", _("nurse")
        COORDINATOR = "coordinator", _("care coordinator")
        PHARMACIST = "pharmacist", _("pharmacist")
        PHYSIOTHERAPIST = "physiotherapist", _("physiotherapist")
        MIDWIFE = "midwife", _("midwife")
        DENTIST = "dentist", _("dentist")
        PODIATRIST = "podiatrist", _("podiatrist")
        DIETITIAN = "dietitian", _("dietitian")
        PSYCHOLOGIST = "psychologist", _("psychologist")
        OTHER = "other", _("other")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="practitioner"
    )
    profession = models.CharField(_("profession"), max_length=24, choices=Profession.choices)
    specialty = models.CharField(_("specialty"), max_length=100, blank=True)
    rpps = models.CharField(_("RPPS number"), max_length=11, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="practitioners"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "coordination_practitioner"
        constraints = [
            models.UniqueConstraint(
                fields=["rpps"], condition=~Q(rpps=""), name="practitioner_rpps_unique"
            ),
            models.CheckConstraint(
                condition=~Q(profession="specialist") | ~Q(specialty=""),
                name="practitioner_specialist_has_specialty",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        full = self.user.get_full_name()
        return full or self.user.get_username()


class ServiceTeam(models.Model):
    """A pool of practitioners (a home-care nursing service, a hospital's remote-monitoring
    team) that takes tasks offered to it. Its members are the users of `group`, so object
    permissions granted to the team reach every member."""

    name = models.CharField(_("name"), max_length=200)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="service_team")
    roles = models.JSONField(
        _("pathway roles"), default=list, blank=True, help_text=_("Roles the team can take.")
    )
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "coordination_serviceteam"

    def __str__(self) -> str:
        return self.name


class ServiceTeamMembership(models.Model):
    team = models.ForeignKey(ServiceTeam, on_delete=models.CASCADE, related_name="memberships")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="team_memberships"
    )
    since = models.DateTimeField()

    class Meta:
        db_table = "coordination_serviceteammembership"
        constraints = [
            models.UniqueConstraint(fields=["team", "practitioner"], name="team_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.practitioner_id} in team {self.team_id}"


class CareTeam(models.Model):
    """The professionals around one patient, each playing a pathway role."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="care_team")
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "coordination_careteam"

    def __str__(self) -> str:
        return f"care team of patient {self.patient_id}"


class CareTeamMember(models.Model):
    """A practitioner, or a service team, playing `role` in a patient's care team."""

    care_team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="members")
    practitioner = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.PROTECT, related_name="care_roles"
    )
    service_team = models.ForeignKey(
        ServiceTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="care_roles"
    )
    role = models.CharField(_("pathway role"), max_length=63)
    active = models.BooleanField(default=True)
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "coordination_careteammember"
        constraints = [
            models.CheckConstraint(
                condition=Q(practitioner__isnull=False, service_team__isnull=True)
                | Q(practitioner__isnull=True, service_team__isnull=False),
                name="care_team_member_is_one_party",
            ),
            models.UniqueConstraint(
                fields=["care_team", "practitioner", "role"],
                condition=Q(active=True, practitioner__isnull=False),
                name="care_team_practitioner_role_unique",
            ),
            models.UniqueConstraint(
                fields=["care_team", "service_team", "role"],
                condition=Q(active=True, service_team__isnull=False),
                name="care_team_service_team_role_unique",
            ),
        ]
        indexes = [models.Index(fields=["care_team", "role"], name="care_member_role")]

    def __str__(self) -> str:
        who = (
            f"practitioner {self.practitioner_id}"
            if self.practitioner_id
            else f"team {self.service_team_id}"
        )
        return f"{who} as {self.role} in care team {self.care_team_id}"

    @property
    def role_label(self) -> str:
        """The role in words: the profession's label for a role named after a profession
        (gp, nurse, ...), else the pathway's own role name."""
        try:
            return str(Practitioner.Profession(self.role).label)
        except ValueError:
            return self.role


class Invitation(models.Model):
    """A single-use link that lets the owner of an account without a password set one: a
    practitioner created through the API, a patient's portal account. Only the SHA-256 of
    the link's token is kept (directory.services.invitations): whoever reads the table
    cannot use a pending invitation. Pending while not used, not revoked and not expired."""

    class Kind(models.TextChoices):
        PRACTITIONER = "practitioner", _("practitioner account")
        PATIENT_PORTAL = "patient_portal", _("patient portal account")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(_("sent to"), max_length=254)
    language = models.CharField(max_length=8, default="fr")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitations_sent",
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="invitation_user_created")]

    def __str__(self) -> str:
        return f"{self.kind} invitation {self.pk} for user {self.user_id}"
