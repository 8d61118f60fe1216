"""Every model of the app, from the room that owns it (Django loads models from here)."""

from audit.accounts.models import AccessRecord, ApiKey, Membership, Organization
from audit.alerts.models import AlertRule, Delivery, DeliveryAttempt, Destination
from audit.events.models import AuditEvent, Decision, Outcome
from audit.explore.models import SavedView
from audit.ingest.models import EventMarginal, EventRollup, IngestClaim, IngestConflict, PendingBatch, RedactionPolicy, TraceSummary
from audit.integrity.models import ChainVerification, Checkpoint, RemovedRange, SigningKey
from audit.otlp.models import OtlpSpan
from audit.retention.models import LegalHold, RetentionPolicy

__all__ = [
    "AccessRecord", "AlertRule", "ApiKey", "AuditEvent", "ChainVerification", "Checkpoint", "Decision", "Delivery",
    "DeliveryAttempt", "Destination", "IngestClaim", "IngestConflict", "Membership", "Organization", "OtlpSpan",
    "Outcome", "PendingBatch", "SavedView", "SigningKey", "TraceSummary", "LegalHold", "RedactionPolicy",
    "RemovedRange", "RetentionPolicy",
]
