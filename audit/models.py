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


class Decision(models.TextChoices):
    ALLOW = "allow"
    DENY = "deny"
    ALERT = "alert"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    DENIED = "denied"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    UPSTREAM_ERROR = "upstream_error"
    ERROR = "error"


class AuditEvent(models.Model):
    """One gateway call, as sent (SPEC §1), plus what Lens adds.

    `event_id` is the sender's id (the public id in every URL); `id` is an internal
    arrival-ordered key. `seq` and `chain_hash` place the event in its organization's
    hash chain; `content_hash` tells a resend (duplicate) from a different event that
    reuses an id (conflict).
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    trace_id = models.CharField(max_length=128)
    actor = models.CharField(max_length=254, null=True, blank=True)
    slug = models.CharField(max_length=64)
    method = models.CharField(max_length=128)
    tool = models.CharField(max_length=128, null=True, blank=True)
    arguments = models.JSONField(null=True, blank=True)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    rule = models.JSONField(null=True, blank=True)
    reason = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    server = models.JSONField(null=True, blank=True)

    content_hash = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "event_id"], name="audit_event_org_event_id_uniq"),
            models.UniqueConstraint(fields=["org", "seq"], name="audit_event_org_seq_uniq"),
        ]
        indexes = [
            models.Index(fields=["org", "-timestamp", "-id"], name="audit_event_org_time"),
            models.Index(fields=["org", "trace_id", "timestamp", "id"], name="audit_event_org_trace"),
            models.Index(fields=["org", "slug", "-timestamp"], name="audit_event_org_slug"),
            models.Index(fields=["org", "actor", "-timestamp"], name="audit_event_org_actor"),
            models.Index(fields=["org", "decision", "-timestamp"], name="audit_event_org_decision"),
            models.Index(fields=["org", "tool", "-timestamp"], name="audit_event_org_tool"),
        ]
        # The GIN jsonb_path_ops index on metadata is PostgreSQL-only: see migration 0002.

    def __str__(self):
        return self.event_id


class TraceSummary(models.Model):
    """One row per trace, upserted by the ingest service so trace lists never group events."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="traces")
    trace_id = models.CharField(max_length=128)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    calls = models.IntegerField(default=0)
    deny_count = models.IntegerField(default=0)
    alert_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    total_duration_ms = models.FloatField(default=0)
    actors = models.JSONField(default=list)
    slugs = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "trace_id"], name="audit_trace_org_trace_uniq"),
        ]
        indexes = [
            models.Index(fields=["org", "-started_at"], name="audit_trace_org_started"),
        ]

    def __str__(self):
        return self.trace_id


class PendingBatch(models.Model):
    """Accepted events not yet stored: the durable outbox of the ingest path.

    The request writes the batch here before it answers 202, and queues only its id;
    the worker stores the events and deletes the row in one transaction. A batch whose
    message was lost (a broker crash between delivery and its unacked bookkeeping) or
    that failed for a reason a retry will not fix stays here, and the periodic sweep
    (`audit.sweep_pending_batches`, or `manage.py ingest_pending --store`) stores it.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pending_batches")
    events = models.JSONField()
    received_at = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)

    def __str__(self):
        return f"{len(self.events)} events pending since {self.created_at}"


class IngestConflict(models.Model):
    """An event kept out because its id was already stored with other content.

    Most conflicts are answered in the receipt; this records the ones a worker finds
    (the first copy was still queued when the second arrived), so none goes unseen.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conflicts")
    event_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    payload = models.JSONField()
    detected_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"conflict on {self.event_id}"


class ChainVerification(models.Model):
    """The outcome of one recomputation of an organization's hash chain (audit/integrity.py).

    `verified_through` is the last sequence number proven intact by this run (its
    `last_hash` doubles as a checkpoint later runs compare against); when the chain
    is broken, `first_bad_seq`/`first_bad_event_id` name the first event that is not
    what was stored and `kind` says how (changed, removed, inserted, head).
    """

    class Kind(models.TextChoices):
        CHANGED = "changed"
        REMOVED = "removed"
        INSERTED = "inserted"
        HEAD = "head"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="chain_verifications")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    trigger = models.CharField(max_length=16, default="command")
    from_seq = models.BigIntegerField()
    to_seq = models.BigIntegerField()
    events_checked = models.BigIntegerField(default=0)
    ok = models.BooleanField()
    verified_through = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, blank=True)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    first_bad_event_id = models.CharField(max_length=64, null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-finished_at", "-id"], name="audit_chainver_org_latest")]

    def __str__(self):
        return f"{self.org} chain {'ok' if self.ok else 'BROKEN'} through {self.verified_through}"


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
