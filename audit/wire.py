"""The wire format (SPEC §1) of a stored event: the one place a row becomes JSON."""

from audit.models import AuditEvent
from audit.validation import format_timestamp

# Model columns read to build the wire form; selectors use .only(*WIRE_COLUMNS).
WIRE_COLUMNS = (
    "event_id", "timestamp", "trace_id", "actor", "slug", "method", "tool", "arguments", "decision",
    "rule", "reason", "metadata", "duration_ms", "outcome", "status_code", "error", "server",
    "received_at", "seq", "chain_hash",
)


def event_wire(event: AuditEvent) -> dict:
    """SPEC §1 fields in order, then what Lens adds: received_at, seq, chain_hash."""
    return {
        "id": event.event_id,
        "timestamp": format_timestamp(event.timestamp),
        "trace_id": event.trace_id,
        "actor": event.actor,
        "slug": event.slug,
        "method": event.method,
        "tool": event.tool,
        "arguments": event.arguments,
        "decision": event.decision,
        "rule": event.rule,
        "reason": event.reason,
        "metadata": event.metadata,
        "duration_ms": event.duration_ms,
        "outcome": event.outcome,
        "status_code": event.status_code,
        "error": event.error,
        "server": event.server,
        "received_at": format_timestamp(event.received_at),
        "seq": event.seq,
        "chain_hash": event.chain_hash,
    }
