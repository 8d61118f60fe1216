"""The recorded outcomes of chain verifications."""

from django.db import models

from audit.accounts.models import Organization


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
