"""SPEC §13 in one place: how an OpenTelemetry span becomes an audit event.

A span with `mcp.method.name` is an MCP call and becomes one event (the OpenTelemetry MCP
and GenAI semantic conventions). Its policy decision is on the span itself or on its
`apply_guardrail` child spans. `FIELDS` below is the table of SPEC §13, row by row; the
result is a raw wire event that the ingest door (`audit.ingest.door`) validates like any
other. docs/otlp.md shows the same table, with an example.
"""

import json
import math
import re
from datetime import UTC, datetime, timedelta

from audit.events.wire import format_timestamp
from audit.otlp.codec import Span

CALL, GUARDRAIL = "call", "guardrail"

MCP_METHOD = "mcp.method.name"
OPERATION = "gen_ai.operation.name"
APPLY_GUARDRAIL = "apply_guardrail"
DECISION_TYPE = "gen_ai.security.decision.type"
POLICY_ID, POLICY_NAME = "gen_ai.security.policy.id", "gen_ai.security.policy.name"
DECISION_REASON = "gen_ai.security.decision.reason"
METADATA_PREFIX = "igris.metadata."

# gen_ai.security.decision.type → decision; any other type → allow.
DECISIONS = {"deny": "deny", "warn": "alert"}
# When the span and its guardrails disagree, the most severe decision wins.
_SEVERITY = {"allow": 0, "alert": 1, "deny": 2}


class Unmappable(ValueError):
    """A span attribute that cannot become the event field it maps to."""


def span_kind(span: Span) -> str | None:
    """CALL (becomes an event), GUARDRAIL (decides a call's event), or None (not ours)."""
    if MCP_METHOD in span.attributes:
        return CALL
    if span.attributes.get(OPERATION) == APPLY_GUARDRAIL or span.name.split(" ", 1)[0] == APPLY_GUARDRAIL:
        return GUARDRAIL
    return None


def _attribute(span, *keys):
    """The first of `keys` the span carries, else None."""
    for key in keys:
        value = span.attributes.get(key)
        if value is not None:
            return value
    return None


def _timestamp(span, verdict):
    if not span.start_ns:
        raise Unmappable("the span has no start_time_unix_nano")
    try:
        return format_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=span.start_ns // 1000))
    except OverflowError:
        raise Unmappable("start_time_unix_nano is out of range") from None


def _duration_ms(span, verdict):
    # No end time: no duration. An end before the start is left for the door to refuse.
    return (span.end_ns - span.start_ns) / 1e6 if span.end_ns else None


def _arguments(span, verdict):
    value = span.attributes.get("gen_ai.tool.call.arguments")
    if isinstance(value, str):  # JSON text, as the convention records it
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise Unmappable("gen_ai.tool.call.arguments is not JSON text") from None
    return value  # a structured (kvlist) value is already an object; the door checks the rest


def _slug(span, verdict):
    """`igris.slug` as sent; else the server's name made slug-safe: lowercased, each run of
    other characters a `-`, cut to 64 and padded with `-` to the 3 characters a slug needs."""
    slug = span.attributes.get("igris.slug")
    if slug is not None:
        return slug
    name = _attribute(span, "mcp.server.name", "server.address")
    if isinstance(name, str):
        safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:64]
        if safe:
            return safe.ljust(3, "-")
    raise Unmappable("the span has none of igris.slug, mcp.server.name, server.address (or no letter or digit in them)")


def _metadata(span, verdict):
    return {key[len(METADATA_PREFIX):]: value for key, value in span.attributes.items() if key.startswith(METADATA_PREFIX)}


def _rule(span, verdict):
    source = verdict[1]
    if source is None:
        return None
    rule = {"id": source.attributes.get(POLICY_ID), "policy": source.attributes.get(POLICY_NAME)}
    return {key: value for key, value in rule.items() if value is not None} or None


def _reason(span, verdict):
    return None if verdict[1] is None else verdict[1].attributes.get(DECISION_REASON)


def _outcome(span, verdict):
    outcome = span.attributes.get("igris.outcome")
    if outcome is not None:
        return outcome
    return "denied" if verdict[0] == "deny" else "error" if span.error else "success"


def _error(span, verdict):
    parts = [span.attributes.get("error.type"), span.status_message if span.error else None]
    return ": ".join(str(part) for part in parts if part) or None


# SPEC §13: event field ← how it is read from the call span and its verdict, which is
# (decision, the span that decided it: the call or one of its apply_guardrail children).
FIELDS = (
    ("id", lambda span, verdict: f"otel-{span.span_id}"),
    ("timestamp", _timestamp),
    ("trace_id", lambda span, verdict: _attribute(span, "igris.trace_id") or span.trace_id),
    ("actor", lambda span, verdict: _attribute(span, "igris.user", "enduser.id")),
    ("slug", _slug),
    ("method", lambda span, verdict: span.attributes[MCP_METHOD]),
    ("tool", lambda span, verdict: span.attributes.get("gen_ai.tool.name")),
    ("arguments", _arguments),
    ("decision", lambda span, verdict: verdict[0]),
    ("rule", _rule),
    ("reason", _reason),
    ("metadata", _metadata),
    ("duration_ms", _duration_ms),
    ("outcome", _outcome),
    ("status_code", lambda span, verdict: span.attributes.get("http.response.status_code")),
    ("error", _error),
)
# The attributes FIELDS reads (besides every igris.metadata.* one): what Lens keeps of a
# span while it waits for its call or its guardrail.
ATTRIBUTES = frozenset({
    MCP_METHOD, OPERATION, DECISION_TYPE, POLICY_ID, POLICY_NAME, DECISION_REASON, "igris.trace_id", "igris.user",
    "enduser.id", "igris.slug", "mcp.server.name", "server.address", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
    "igris.outcome", "http.response.status_code", "error.type",
})


def _decision(span):
    return DECISIONS.get(span.attributes.get(DECISION_TYPE), "allow")


def _verdict(call, guardrails):
    """The most severe decision among the call and its guardrails (the call first, then
    the guardrails by start time, on a tie), and the span it came from; none → allow."""
    ordered = sorted(guardrails, key=lambda span: (span.start_ns, span.span_id))
    deciders = [span for span in (call, *ordered) if DECISION_TYPE in span.attributes]
    if not deciders:
        return "allow", None
    decider = max(deciders, key=lambda span: _SEVERITY[_decision(span)])
    return _decision(decider), decider


def span_event(*, call: Span, guardrails=()) -> tuple[dict, dict]:
    """(raw wire event, errors by field) for an MCP call span and its guardrail children."""
    verdict = _verdict(call, guardrails)
    event, errors = {}, {}
    for name, read in FIELDS:
        try:
            event[name] = read(call, verdict)
        except Unmappable as exc:
            errors[name] = str(exc)
    return event, errors


def decides(span: Span) -> bool:
    """The span carries a decision of its own (a call need not wait for a guardrail)."""
    return DECISION_TYPE in span.attributes


def stand_in_call(guardrail: Span) -> Span:
    """A call that stands in for a guardrail's parent before that comes: the door checks the
    guardrail's own fields (decision, rule, reason) in the event they would give it. It
    starts when the guardrail does, so the door's time bounds judge the guardrail's time."""
    return Span(
        trace_id="0" * 32, span_id="0" * 16, parent_span_id="", name="stand-in", start_ns=guardrail.start_ns,
        end_ns=guardrail.start_ns, error=False, status_message="",
        attributes={MCP_METHOD: "tools/call", "gen_ai.tool.name": "stand-in", "igris.slug": "stand-in"},
    )


def span_record(span: Span) -> dict:
    """What Lens keeps of a span while it waits (JSON): the parts FIELDS reads. Raises
    Unmappable when one of them cannot be stored (a NUL, a lone surrogate, a NaN)."""
    attributes = {
        key: value for key, value in span.attributes.items() if key in ATTRIBUTES or key.startswith(METADATA_PREFIX)
    }
    for key, value in attributes.items():
        if not _storable(value):
            raise Unmappable(f"attribute {key[:80]!r} holds a NUL character, a lone surrogate or a non-finite number")
    message = span.status_message if span.error else ""
    if not _storable(message):
        raise Unmappable("the status message holds a NUL character or a lone surrogate")
    return {"start_ns": span.start_ns, "end_ns": span.end_ns, "error": span.error, "status_message": message,
            "attributes": attributes}


def record_span(*, trace_id: str, span_id: str, parent_span_id: str, record: dict) -> Span:
    """The span back from what was kept of it: mapping it gives the event mapping the original gave."""
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id, name="", **record)


def _storable(value) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and _encodable(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    return True


def _encodable(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
