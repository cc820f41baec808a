"""Patient identity (INS), consent, devices and observations, object permissions on patients,
and the tamper-evident access audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from patients.identifiers import InsOid


class Patient(models.Model):
    """A patient's identity, contact details and INS.

    `version` starts at 1 and is incremented by every service write of this row; writers pass
    the version they read (`expected_version`) and get a Conflict when it moved on.

    The INS (`ins_nir` + `ins_oid`) is both set or both empty; an identity `recovered` or
    `qualified` (identitovigilance) always has one, since both statuses mean the INS was
    obtained from the national teleservice.
    """

    class Sex(models.TextChoices):
        """FHIR administrative gender."""

        MALE = "male", _("male")
        FEMALE = "female", _("female")
        OTHER = "other", _("other")
        UNKNOWN = "unknown", _("unknown")

    class IdentityStatus(models.TextChoices):
        PROVISIONAL = "provisional", _("provisional")
        RECOVERED = "recovered", _("recovered")
        VALIDATED = "validated", _("validated")
        QUALIFIED = "qualified", _("qualified")

    INS_OID_CHOICES = [
        (InsOid.NIR.value, "INS-NIR"),
        (InsOid.NIA.value, "INS-NIA"),
        (InsOid.TEST_NIR.value, _("INS-NIR (test)")),
        (InsOid.TEST_NIA.value, _("INS-NIA (test)")),
    ]

    family_name = models.CharField(_("family name"), max_length=150)
    given_names = models.CharField(_("given names"), max_length=255)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices)
    birth_place_code = models.CharField(
        _("birth place"),
        max_length=5,
        blank=True,
        help_text=_("INSEE commune code of the birth place (2A/2B for Corsica)."),
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    address_lines = models.JSONField(_("address lines"), default=list, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    ins_nir = models.CharField(
        _("INS number"),
        max_length=15,
        blank=True,
        help_text=_("NIR or NIA: 13 characters and the 2-digit key."),
    )
    ins_oid = models.CharField(_("INS OID"), max_length=32, blank=True, choices=INS_OID_CHOICES)
    identity_status = models.CharField(
        _("identity status"),
        max_length=16,
        choices=IdentityStatus.choices,
        default=IdentityStatus.PROVISIONAL,
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient_record",
        help_text=_("The patient's own portal account."),
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ins_nir", "ins_oid"],
                condition=~Q(ins_nir=""),
                name="patient_ins_unique",
            ),
            models.CheckConstraint(
                condition=Q(ins_nir="", ins_oid="") | (~Q(ins_nir="") & ~Q(ins_oid="")),
                name="patient_ins_complete",
            ),
            models.CheckConstraint(
                condition=~Q(identity_status__in=["recovered", "qualified"]) | ~Q(ins_nir=""),
                name="patient_ins_when_recovered",
            ),
        ]
        indexes = [models.Index(fields=["family_name", "birth_date"], name="patient_name_birth")]
        permissions = [
            ("break_glass_patient", _("Can open any patient record in an emergency (audited)")),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()} {self.given_names} ({self.pk})"

    @property
    def ins_shareable(self) -> bool:
        """Whether the INS may leave Parcours (API responses, webhooks, exports): only a
        qualified identity's. The national INS referential allows only a qualified identity's
        INS to reference or exchange health data; a provisional, recovered or validated
        identity's INS is kept, and shown to the care team labelled as not usable."""
        return self.identity_status == self.IdentityStatus.QUALIFIED and bool(self.ins_nir)


class PatientUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's direct foreign-key table: a user's permissions on one patient."""

    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)


class PatientGroupObjectPermission(GroupObjectPermissionBase):
    """django-guardian's direct foreign-key table: a group's permissions on one patient."""

    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)


class BreakGlassGrant(models.Model):
    """A practitioner outside the care team opening a patient's record in an emergency.

    Gives `view_patient` only (read-only), from `started_at` until `expires_at`; an expired
    grant gives nothing. Never changed once written: created by `patient_break_glass` in the
    same transaction as its `break_glass` audit event, and listed to the patient's care team
    (coordinators) and to the patient."""

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="break_glass_grants"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(_("reason"))
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["user", "expires_at"], name="break_glass_user_expires"),
            models.Index(fields=["patient", "started_at"], name="break_glass_patient_started"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("started_at")),
                name="break_glass_expires_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"break-glass of user {self.user_id} on patient {self.patient_id}"


class Consent(models.Model):
    """A patient's consent to one use of their data. At most one active consent per
    (patient, scope); withdrawing sets `withdrawn_at` and takes effect at once."""

    class Scope(models.TextChoices):
        CARE_TEAM_SHARING = "care_team_sharing", _("sharing with the care team")
        REMOTE_MONITORING = "remote_monitoring", _("remote monitoring")
        EXTERNAL_SHARING = "external_sharing", _("sharing with external platforms")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        WITHDRAWN = "withdrawn", _("withdrawn")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    scope = models.CharField(max_length=32, choices=Scope.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    recorded_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.TextField(blank=True)
    withdrawal_note = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "scope"],
                condition=Q(status="active"),
                name="consent_one_active_per_scope",
            ),
            models.CheckConstraint(
                condition=Q(status="active", withdrawn_at__isnull=True)
                | Q(status="withdrawn", withdrawn_at__isnull=False),
                name="consent_withdrawn_at_iff_withdrawn",
            ),
        ]

    def __str__(self) -> str:
        return f"consent {self.scope} of patient {self.patient_id} ({self.status})"


class Device(models.Model):
    """A measuring device lent to or owned by a patient. An active device's
    (manufacturer, model, serial) is unique, so one device reports for one patient at a time."""

    class Kind(models.TextChoices):
        SCALE = "scale", _("scale")
        GLUCOMETER = "glucometer", _("glucometer")
        BP_MONITOR = "bp_monitor", _("blood pressure monitor")
        PULSE_OXIMETER = "pulse_oximeter", _("pulse oximeter")
        THERMOMETER = "thermometer", _("thermometer")
        OTHER = "other", _("other")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="devices")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    manufacturer = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    serial = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "model", "serial"],
                condition=Q(active=True) & ~Q(serial=""),
                name="device_active_serial_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.manufacturer} {self.model} {self.serial}".strip()


class Observation(models.Model):
    """One measurement: a LOINC `code`, a `value` in the UCUM `unit` it was given in, and the
    time it was taken (`effective_at`). Validated by the services against
    `patients.measurements`."""

    class Source(models.TextChoices):
        DEVICE = "device", _("device")
        PATIENT = "patient", _("patient")
        PROFESSIONAL = "professional", _("professional")
        PLATFORM = "platform", _("platform")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="observations")
    code = models.CharField(max_length=16)
    value = models.DecimalField(max_digits=12, decimal_places=4)
    unit = models.CharField(max_length=16)
    effective_at = models.DateTimeField()
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    received_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        indexes = [
            models.Index(fields=["patient", "code", "-effective_at"], name="observation_series"),
        ]

    def __str__(self) -> str:
        return f"{self.code} = {self.value} {self.unit} at {self.effective_at:%Y-%m-%d %H:%M}"


GENESIS_HASH = "0" * 64

#: The fields an audit record's hash covers, in this order in the docstring of AuditEvent.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_label",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "purpose",
    "outcome",
    "entry_point",
    "client_address",
    "detail",
)


def canonical_timestamp(moment: dt.datetime) -> str:
    """`2026-03-02T08:00:00.000000Z`: UTC, always six fractional digits, a literal Z."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_address(address: str | None) -> str | None:
    """The address as Python's `ipaddress` prints it (IPv6 compressed, lower case); an
    IPv4-mapped IPv6 address becomes the IPv4 address."""
    if address is None:
        return None
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return str(parsed)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, non-ASCII characters kept as they are."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def chain_hash(prev_hash: str, record: Mapping[str, Any], key: bytes | None) -> str:
    """HMAC-SHA256 under `key` of prev_hash + the canonical record, in lowercase hex; plain
    SHA-256 when `key` is None (records chained before the chain was keyed)."""
    message = (prev_hash + canonical_json(record)).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.digest(key, message, "sha256").hex()


class AuditEvent(models.Model):
    """One access to, or change of, patient data. Append-only and hash-chained.

    Never changed, never deleted: on PostgreSQL a trigger (migrations 0002, 0004 and 0005)
    refuses DELETE and TRUNCATE on this table and every UPDATE but the one that chains a
    record; the actor and the
    patient are PROTECTed foreign keys, so a user or a patient with audit records cannot be
    deleted (deactivate the account instead), and `actor_label` keeps a readable name for
    actors that are not users (platforms, system).

    How to recompute `hash` (an auditor needs nothing but this paragraph and the key):

        hash = lowercase hex HMAC-SHA256, under the key whose id is `key_id`, of the UTF-8
               bytes of (prev_hash + C)

    where `prev_hash` is the `hash` of the record with the previous `seq` (64 "0" characters
    for seq 1), the key is the UTF-8 bytes of AUDIT_CHAIN_KEY or of one of
    AUDIT_CHAIN_KEY_FALLBACKS (the one whose id, the first 16 hex digits of
    HMAC-SHA256(key, "parcours audit chain key id"), is `key_id`), and C is the JSON object of
    exactly these 13 members:

        seq             integer
        occurred_at     string, UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ" (six fractional digits)
        actor_id        integer, or null
        actor_label     string
        action          string
        resource_type   string
        resource_id     string
        patient_id      integer, or null
        purpose         string
        outcome         string
        entry_point     string
        client_address  string as Python's ipaddress prints it (IPv6 compressed, lower case,
                        IPv4-mapped IPv6 shown as IPv4), or null
        detail          the stored JSON object (strings, integers, booleans, null, arrays and
                        objects only: no floating-point numbers)

    serialised with keys sorted by code point at every level, no whitespace (separators ","
    and ":"), non-ASCII characters written as themselves (not \\u escapes); that is Python's
    `json.dumps(C, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

    Records chained before the chain was keyed have an empty `key_id` and hash = lowercase
    hex SHA-256 of the same bytes. They come first: the first keyed record's HMAC covers the
    hash of the last of them, so they cannot be rewritten either without the key, and the
    checkpoints kept outside the database (docs/audit.md) record where keyed hashing began.

    `seq` starts at 1 and has no gaps. A record is inserted without `seq`, `prev_hash`, `hash`
    and `key_id`, by the transaction it describes (recording takes no lock), and chained once
    committed by `patients.services.audit_chain_extend`, which holds AuditChainHead's row
    (the last seq and hash) while it chains, in id order, every committed record not chained
    yet: the relay runs it within a second of the commit, a periodic job behind it. Chaining
    is the only UPDATE the table accepts (on PostgreSQL a trigger refuses every other, and
    TRUNCATE), and only once per record.
    """

    class Action(models.TextChoices):
        READ = "read", _("read")
        SEARCH = "search", _("search")
        CREATE = "create", _("create")
        UPDATE = "update", _("update")
        DELETE = "delete", _("delete")
        EXPORT = "export", _("export")
        LOGIN = "login", _("login")
        BREAK_GLASS = "break_glass", _("break the glass")
        GRANT = "grant", _("grant access")
        REVOKE = "revoke", _("revoke access")

    class Purpose(models.TextChoices):
        TREATMENT = "treatment", _("treatment")
        CARE_COORDINATION = "care_coordination", _("care coordination")
        EMERGENCY = "emergency", _("emergency")
        PATIENT_ACCESS = "patient_access", _("patient's own access")
        ADMINISTRATION = "administration", _("administration")
        AUDIT = "audit", _("audit")

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("success")
        DENIED = "denied", _("denied")
        NOT_FOUND = "not_found", _("not found")
        ERROR = "error", _("error")

    class EntryPoint(models.TextChoices):
        REST = "rest", "REST"
        FHIR = "fhir", "FHIR"
        WEB = "web", _("web")
        WEBSOCKET = "websocket", "WebSocket"
        ADMIN = "admin", _("admin")
        CLI = "cli", _("command line")
        SYSTEM = "system", _("system")

    seq = models.BigIntegerField(unique=True, null=True, blank=True)  # None until chained
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=16, choices=Action.choices)
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=64, blank=True)
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    entry_point = models.CharField(max_length=16, choices=EntryPoint.choices)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)  # "" until chained
    hash = models.CharField(max_length=64, blank=True)  # "" until chained
    # The id of the key that hashed the record (patients.chain_keys); "" until chained, and
    # for records chained before the chain was keyed.
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["id"]  # the order of recording; `seq` is the order of chaining
        indexes = [
            models.Index(fields=["patient", "occurred_at"], name="audit_patient_occurred"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_occurred"),
            # What the chainer looks for on every pass of the relay.
            models.Index(fields=["id"], name="audit_unchained", condition=Q(seq__isnull=True)),
        ]

    def __str__(self) -> str:
        position = f"#{self.seq}" if self.seq is not None else f"(id {self.pk}, not chained yet)"
        return f"{position} {self.actor_label} {self.action} {self.resource_type} ({self.outcome})"

    def canonical_record(self) -> dict[str, Any]:
        """The members the hash covers (see the class docstring), in canonical form."""
        return {
            "seq": self.seq,
            "occurred_at": canonical_timestamp(self.occurred_at),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "patient_id": self.patient_id,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "entry_point": self.entry_point,
            "client_address": canonical_address(self.client_address),
            "detail": self.detail,
        }

    def compute_hash(self, key: bytes | None) -> str:
        """The record's hash under `key` (None: the unkeyed SHA-256 of early records)."""
        return chain_hash(self.prev_hash, self.canonical_record(), key)


class AuditChainHead(models.Model):
    """The single row (id 1) holding the last seq and hash of the audit chain. Chaining locks
    it (SELECT ... FOR UPDATE), which serialises the chainers and so orders the chain."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="audit_head_singleton")]

    def __str__(self) -> str:
        return f"audit chain head at seq {self.last_seq}"
