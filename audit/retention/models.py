"""The retention room's records: per-organization retention, legal holds, redaction paths
and key. (The signed record of each run of seqs removed is the integrity room's: RemovedRange.)"""

from django.db import models

from audit.accounts.models import Organization


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
