"""Every model of the app, from the room that owns it (Django loads models from here)."""

from audit.accounts.models import AccessRecord, ApiKey, Membership, Organization
from audit.events.models import AuditEvent, Decision, Outcome
from audit.ingest.models import IngestConflict, PendingBatch, TraceSummary
from audit.integrity.models import ChainVerification
from audit.otlp.models import OtlpSpan

__all__ = [
    "AccessRecord", "ApiKey", "AuditEvent", "ChainVerification", "Decision", "IngestConflict", "Membership",
    "Organization", "OtlpSpan", "Outcome", "PendingBatch", "TraceSummary",
]
