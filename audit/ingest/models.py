"""What the ingest path keeps besides events: trace summaries, the outbox, claims, conflicts."""

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
    # The door's content hash of each event, in order: the worker need not hash them again
    # (null on batches written before it was kept; the worker then computes them).
    content_hashes = models.JSONField(null=True, blank=True)
    received_at = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)

    def __str__(self):
        return f"{len(self.events)} events pending since {self.created_at}"


class IngestClaim(models.Model):
    """A new event id taken by a batch in flight (audit/ingest/claims.py).

    Written with the batch in the request's transaction; the unique (org, event_id) lets
    exactly one of several racing requests take a new id, and tells the others what it
    holds. Deleted with its batch (the cascade), when the worker stores the batch or a
    request that could not queue it gives it up: the table holds only ids in flight.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    batch = models.ForeignKey(PendingBatch, on_delete=models.CASCADE, related_name="claims")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "event_id"], name="audit_claim_org_event_uniq")]

    def __str__(self):
        return f"{self.event_id} claimed by batch {self.batch_id}"


class IngestConflict(models.Model):
    """An event kept out because its id was already taken by other content.

    Every conflict is kept: those answered in the sender's receipt (`in_receipt`), and
    those a worker finds (an event stored around the request path, by `lens_demo` or a
    bulk load), so none goes unseen: GET /api/v1/conflicts, /conflicts/ for admins.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conflicts")
    event_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    payload = models.JSONField()
    detected_at = models.DateTimeField(auto_now_add=True)
    in_receipt = models.BooleanField(default=False, help_text="The sender was told in its receipt.")

    class Meta:
        indexes = [models.Index(fields=["org", "-detected_at", "-id"], name="audit_conflict_org_at")]

    def __str__(self):
        return f"conflict on {self.event_id}"


class PeriodCounts(models.Model):
    """What the count tables keep per row: a period of the call time at one grain, and how
    many of its events (with one decision) and their durations (audit/ingest/rollups.py)."""

    grain = models.IntegerField()  # seconds: 60, 3600 or 86400
    start = models.DateTimeField()  # the period's start (UTC)
    decision = models.CharField(max_length=8)
    count = models.BigIntegerField()
    duration_count = models.BigIntegerField(default=0)  # events that carry a duration
    duration_sum = models.FloatField(default=0)
    duration_max = models.FloatField(null=True)

    class Meta:
        abstract = True


class EventRollup(PeriodCounts):
    """Exact event counts per organization, period of `timestamp` and combination of the
    dimensions people count by (audit/ingest/rollups.py), upserted in the transaction
    that stores the events, so histograms and top-N read far fewer rows than events.

    Kept at three grains (a minute, an hour, a UTC day: `grain` in seconds), because
    audit trails are many-valued: with a few actors, tools and rules, a busy minute
    holds about as many combinations as events, while a day folds thousands of events
    into each. Reads use the coarsest grain that fits, finer ones at the window's edges.

    Keyed by the call time (`timestamp`), not `received_at`: every list, window and
    histogram filters on the call time, so only a rollup on it can answer them.
    `dimensions` is a digest of (decision, slug, actor, tool, method, outcome, rule_id)
    that makes the upsert's conflict target one unique index whatever is null.

    Every stored batch updates rows in place, so on PostgreSQL the table leaves room in its
    pages (fillfactor, migration 0016; EventMarginal likewise) for those updates to stay on
    the page and skip the indexes (HOT), and has no index beyond the unique one, which serves org_id lookups too.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    dimensions = models.TextField()
    slug = models.CharField(max_length=64)
    actor = models.CharField(max_length=254, null=True)
    tool = models.CharField(max_length=128, null=True)
    method = models.CharField(max_length=128)
    outcome = models.CharField(max_length=16)
    rule_id = models.TextField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "grain", "start", "dimensions"], name="audit_rollup_org_grain_start_dims_uniq"
            ),
        ]

    def __str__(self):
        return f"{self.start:%Y-%m-%dT%H:%MZ}/{self.grain}s {self.decision} {self.count}"


class EventMarginal(PeriodCounts):
    """The rollup's marginals: exact event counts per organization, period, decision and the
    value of ONE dimension (`dimension`: a rollup column, or "" for all events), kept
    beside EventRollup by the same upserts (audit/ingest/rollups.py).

    EventRollup keeps every combination, which is what a count filtered by two dimensions
    needs, but a day of a busy organization holds thousands of them. The questions asked
    most (a histogram or total of everything or of one actor, tool, connection…, the top
    values of one dimension, the facets of an unfiltered list) need only one dimension at
    a time: a few rows per value and period, so they stay cheap at any volume.
    `key` is a digest of (dimension, value, decision), the upsert's conflict target
    whatever is null.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="marginals", db_index=False)
    dimension = models.CharField(max_length=16)  # an EventRollup column, "" for all events
    value = models.TextField(null=True)
    key = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "grain", "start", "key"], name="audit_marginal_org_grain_start_key_uniq"
            ),
        ]
        indexes = [models.Index(fields=["org", "dimension", "grain", "start"], name="audit_marginal_dimension_idx")]

    def __str__(self):
        return f"{self.start:%Y-%m-%dT%H:%MZ}/{self.grain}s {self.dimension}={self.value} {self.decision} {self.count}"


class RedactionPolicy(models.Model):
    """What an organization redacts at ingest, and the HMAC key of its tokens.

    `paths` are `arguments.<key>[.<key>…]` or `metadata.<key>`; the key (32 random bytes)
    is stored only encrypted, as signing keys are (audit/integrity/keys.py). One row, so
    the ingest door reads an organization's redaction in one query."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="redaction")
    paths = models.JSONField(default=list)
    key_encrypted = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.org}: redact {', '.join(self.paths) or 'nothing'}"
