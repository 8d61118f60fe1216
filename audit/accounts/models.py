"""Organizations, their people and keys, and the record of who read what."""

from django.conf import settings
from django.db import models


class Organization(models.Model):
    """A tenant. Every event, key and login belongs to exactly one."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    # Head of the tamper-evident chain (see audit/chain.py): the last sequence
    # number given out and its hash. Moved only by the ingest service under the
    # organization's lock.
    chain_seq = models.BigIntegerField(default=0)
    chain_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer"
        ADMIN = "admin"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    def __str__(self):
        return f"{self.user} in {self.org} ({self.role})"


class ApiKey(models.Model):
    """An API key. Only its SHA-256 is stored; the prefix finds it and is safe to show."""

    class Scope(models.TextChoices):
        INGEST = "ingest"
        READ = "read"
        ADMIN = "admin"  # manage the organization's alerts and read its access log (SPEC §12)

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def has_scope(self, scope):
        return scope in self.scopes

    def __str__(self):
        return f"{self.prefix}… ({self.name or 'unnamed'})"


class AccessRecord(models.Model):
    """One read of the audit trail: who read or exported what, with which filters, when.

    Written by `audit.access_log.access_record` from every API view that returns
    events; shown to the organization's admins at /api/v1/access-log.
    """

    class Action(models.TextChoices):
        EVENT_LIST = "event-list"
        EVENT_VIEW = "event-view"
        EXPORT = "export"
        TRACE_LIST = "trace-list"
        TRACE_VIEW = "trace-view"
        POLICY_SIMULATE = "policy-simulate"
        INTEGRITY = "integrity"
        CONFLICT_LIST = "conflict-list"
        EVENT_HISTOGRAM = "event-histogram"
        STATS_TOP = "stats-top"
        EVENT_STREAM = "event-stream"
        HOLD_PLACE = "hold-place"  # legal holds (audit/retention/holds.py): placing and releasing are recorded
        HOLD_RELEASE = "hold-release"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="access_records")
    at = models.DateTimeField()
    # Who: a login or an API key (kept as text too, so the record outlives both).
    actor = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    address = models.GenericIPAddressField(null=True, blank=True)
    # What: the action, the path, the event or trace id for single reads, the output format.
    action = models.CharField(max_length=16, choices=Action.choices)
    path = models.CharField(max_length=2000)
    target = models.CharField(max_length=128, blank=True)
    format = models.CharField(max_length=16, blank=True)
    # Which filters: the query's filter parameters, name -> list of values.
    filters = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-at", "-id"], name="audit_access_org_at")]

    def __str__(self):
        return f"{self.actor} {self.action} {self.path}"
