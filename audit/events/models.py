"""The stored audit event (its fields are declared in audit/events/fields.py)."""

from django.db import models

from audit.accounts.models import Organization
from audit.events.fields import DECISIONS, OUTCOMES


# The choices come from the declaration; the enums let code say Decision.DENY.
Decision = models.TextChoices("Decision", [(value.upper(), value) for value in DECISIONS])
Outcome = models.TextChoices("Outcome", [(value.upper(), value) for value in OUTCOMES])


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
    # Hash rule v2 (audit/integrity/chain.py): the chain covers this commitment, not the
    # arguments, so retention may null `arguments` (and set `arguments_removed`) later.
    arguments_sha256 = models.CharField(max_length=64, null=True, blank=True)
    arguments_removed = models.BooleanField(db_default=False)
    # Lens-only (fields.STORAGE_FIELDS): the full text that `q` searches, lower-cased at
    # ingest. On PostgreSQL a pg_trgm GIN index serves its LIKE '%…%' (migration 0010).
    search_text = models.TextField(db_default="", blank=True)

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
