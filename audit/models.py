"""Every model of the app, from the room that owns it (Django loads models from here)."""

from audit.accounts.models import AccessRecord, ApiKey, Membership, Organization
from audit.events.models import AuditEvent, Decision, Outcome
from audit.ingest.models import IngestClaim, IngestConflict, PendingBatch, TraceSummary
from audit.integrity.models import ChainVerification

__all__ = [
    "AccessRecord", "ApiKey", "AuditEvent", "ChainVerification", "Decision", "IngestClaim", "IngestConflict",
    "Membership",
    "Organization", "Outcome", "PendingBatch", "TraceSummary",
]
