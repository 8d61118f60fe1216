"""What the ingest path keeps besides events: trace summaries, the outbox, conflicts."""

from django.db import models

from audit.accounts.models import Organization


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
