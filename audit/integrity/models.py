"""The integrity room's records: chain verifications, signing keys and signed checkpoints."""

from django.db import models
from django.db.models import Q

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
        CHECKPOINT = "checkpoint"

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
    # The newest signed checkpoint this run proved (its digest): the next incremental run starts there.
    checkpoint_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-finished_at", "-id"], name="audit_chainver_org_latest")]

    def __str__(self):
        return f"{self.org} chain {'ok' if self.ok else 'BROKEN'} through {self.verified_through}"


class SigningKey(models.Model):
    """An organization's Ed25519 key pair (audit/integrity/keys.py).

    The public half is stored in the clear (base64 of its 32 bytes) and published at
    /api/v1/integrity/keys; the private half only encrypted (AES-256-GCM under a key
    derived from LENS_SIGNING_KEY_SECRET), and erased when the key is retired. One live
    (unretired) key per organization.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="signing_keys")
    key_id = models.CharField(max_length=16, unique=True)
    public_key = models.CharField(max_length=64)
    private_key_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org"], condition=Q(retired_at=None), name="audit_signingkey_one_live"),
        ]

    def __str__(self):
        return f"{self.org} key {self.key_id}{' (retired)' if self.retired_at else ''}"


class Checkpoint(models.Model):
    """A signed statement of an organization's chain head (audit/integrity/checkpoints.py).

    `previous` is the digest of the checkpoint before it, so the checkpoints form a
    chain of their own: a deleted one breaks the link of the next. `digest` is the
    SHA-256 of this checkpoint's signed message (audit/integrity/signatures.py).
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="checkpoints")
    seq = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="checkpoints")
    previous = models.CharField(max_length=64)
    reason = models.CharField(max_length=32)
    signature = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Two checkpoints may never follow the same one: the chain of checkpoints cannot fork.
            models.UniqueConstraint(fields=["org", "previous"], name="audit_checkpoint_no_fork"),
        ]
        indexes = [models.Index(fields=["org", "-signed_at", "-id"], name="audit_checkpoint_org_latest")]

    def __str__(self):
        return f"{self.org} checkpoint seq {self.seq} at {self.signed_at:%Y-%m-%d %H:%M:%S}"


class RemovedRange(models.Model):
    """Seqs `first_seq`..`last_seq` of an organization's chain were removed by retention.

    `last_hash` is the chain hash of `last_seq`, from which the next stored event still
    links; `signature` (the organization's key, audit/integrity/removals.py) covers the
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
