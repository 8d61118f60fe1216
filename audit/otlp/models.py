"""What the OTLP door keeps: MCP call spans and their guardrail spans, until they can
become one event together, and for a while after (so a retry or a late guardrail is known)."""

from django.db import models

from audit.accounts.models import Organization


class OtlpSpan(models.Model):
    """One span of a call: the call itself, or an `apply_guardrail` child that decides it.

    A call waits (`due_at`) for a guardrail child that may come in another export request,
    unless it has one already or decides itself. Due calls and their guardrails are claimed
    (by the request that made them due, or by a flush), their events handed to the ingest
    path, and they are marked written. Written rows
    stay for LENS_OTLP_KEEP_SECONDS: a resent span is then a duplicate, and a guardrail
    that comes after its call was written is answered as too late, not lost in silence.
    """

    class Kind(models.TextChoices):
        CALL = "call"
        GUARDRAIL = "guardrail"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="otlp_spans")
    trace_id = models.CharField(max_length=32)  # hex, as every id here
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    record = models.JSONField()  # what the mapping reads of the span (audit.otlp.mapping.span_record)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()  # a call: when it becomes an event even without a guardrail
    claimed_at = models.DateTimeField(null=True)  # a flush is handing its event on
    claim = models.CharField(max_length=32, null=True)  # which one (audit.otlp.flush)
    written_at = models.DateTimeField(null=True)  # its event (or its call's) was handed on

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "trace_id", "span_id"], name="audit_otlpspan_span_uniq"),
        ]
        indexes = [
            models.Index(fields=["org", "trace_id", "parent_span_id"], name="audit_otlpspan_parent"),
            models.Index(
                fields=["due_at"], name="audit_otlpspan_due",
                condition=models.Q(kind="call", written_at__isnull=True),
            ),
            models.Index(fields=["written_at"], name="audit_otlpspan_written"),
            models.Index(fields=["claim"], name="audit_otlpspan_claim", condition=models.Q(written_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.kind} span {self.span_id}"
