"""The retention room's records: per-organization retention, legal holds, redaction rules
and key, and the signed record of every run of seqs removed from a chain."""

from django.db import models
from django.db.models import Q

from audit.accounts.models import Organization
from audit.integrity.models import Checkpoint, SigningKey


class RetentionPolicy(models.Model):
    """How long an organization keeps its events, and their arguments (SPEC §11).

    Null means forever. Counted from arrival (`received_at`), which is also what the
    PostgreSQL table is partitioned by."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="retention")
    keep_seconds = models.BigIntegerField(null=True, blank=True)
    keep_arguments_seconds = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.org} keeps {self.keep_seconds}s (arguments {self.keep_arguments_seconds}s)"


class LegalHold(models.Model):
    """Events matching `query` (the query language, SPEC §7) are never removed while the hold
    is active. Released holds stay, with `released_at`, as a record."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="legal_holds")
    reason = models.CharField(max_length=500)
    query = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "released_at", "-created_at"], name="audit_hold_org_active")]

    def __str__(self):
        return f"hold {self.pk} on {self.org}: {self.query}"


class RedactionRule(models.Model):
    """A path (`arguments.<key>[.<key>…]` or `metadata.<key>`) whose value is replaced at ingest."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="redaction_rules")
    path = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "path"], name="audit_redaction_org_path_uniq")]

    def __str__(self):
        return f"{self.org}: redact {self.path}"


class RedactionKey(models.Model):
    """The organization's HMAC key for redaction tokens, stored only encrypted (as signing keys are)."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="redaction_key")
    key_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)


class RemovedRange(models.Model):
    """Seqs `first_seq`..`last_seq` of an organization's chain were removed by retention.

    `last_hash` is the chain hash of `last_seq`, from which the next stored event still
    links; `signature` (the organization's key, audit/retention/removals.py) covers the
    range, its last hash and the digest of the checkpoint signed just before the removal,
    so verification resumes after the gap only where Lens itself recorded one."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="removed_ranges")
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    removed_at = models.DateTimeField()
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="removed_ranges")
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="removed_ranges")
    signature = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "first_seq"], name="audit_removedrange_org_first_uniq"),
            models.CheckConstraint(condition=Q(first_seq__lte=models.F("last_seq")), name="audit_removedrange_ordered"),
        ]

    def __str__(self):
        return f"{self.org}: seqs {self.first_seq}–{self.last_seq} removed"
