"""The demo events as an OpenTelemetry-instrumented gateway would export them: OTLP/HTTP
protobuf spans (SPEC §13 the other way round), for the OTLP ingest figure.

Each event is an MCP call span; a deny's decision sits on an `apply_guardrail` child span
in the same request (the common shape), allows and alerts decide on the call span itself.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from audit.events import demo

_DECISION_TYPES = {"deny": "deny", "alert": "warn", "allow": "allow"}


def _digest(text, size):
    return hashlib.sha256(text.encode()).digest()[:size]


def _value(value):
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _attributes(pairs):
    return [KeyValue(key=key, value=_value(value)) for key, value in pairs.items() if value is not None]


def _spans(event):
    since_epoch = datetime.fromisoformat(event["timestamp"]) - datetime(1970, 1, 1, tzinfo=UTC)
    start = since_epoch // timedelta(microseconds=1) * 1000
    end = start + round(event["duration_ms"] * 1e6)
    trace_id, span_id = _digest(event["trace_id"], 16), _digest(event["id"], 8)
    rule = event.get("rule") or {}
    decision = {
        "gen_ai.security.decision.type": _DECISION_TYPES[event["decision"]],
        "gen_ai.security.policy.id": rule.get("id"),
        "gen_ai.security.policy.name": rule.get("policy"),
        "gen_ai.security.decision.reason": event.get("reason"),
    }
    call = {
        "mcp.method.name": event["method"],
        "gen_ai.tool.name": event.get("tool"),
        "gen_ai.tool.call.arguments": json.dumps(event["arguments"]) if event.get("arguments") is not None else None,
        "igris.trace_id": event["trace_id"],
        "igris.user": event.get("actor"),
        "igris.slug": event["slug"],
        "igris.outcome": event["outcome"],
        "http.response.status_code": event.get("status_code"),
        "error.type": event.get("error"),
        **{f"igris.metadata.{key}": value for key, value in (event.get("metadata") or {}).items()},
    }
    spans = []
    if event["decision"] == "deny":
        spans.append(Span(
            trace_id=trace_id, span_id=_digest(event["id"] + "/guardrail", 8), parent_span_id=span_id,
            name="apply_guardrail", start_time_unix_nano=start, end_time_unix_nano=start + 100_000,
            attributes=_attributes({"gen_ai.operation.name": "apply_guardrail", **decision}),
        ))
    else:
        call.update(decision)
    spans.append(Span(
        trace_id=trace_id, span_id=span_id, name=f"{event['method']} {event.get('tool') or ''}".strip(),
        kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start, end_time_unix_nano=end, attributes=_attributes(call),
    ))
    return spans


def otlp_bodies(*, count, seed, batch_size, days):
    """ExportTraceServiceRequest bodies of `batch_size` calls each, serialized before the clock starts."""
    bodies, request, calls = [], ExportTraceServiceRequest(), 0
    scope = request.resource_spans.add().scope_spans.add()
    for event in demo.demo_events(count=count, seed=seed, days=days):
        scope.spans.extend(_spans(event))
        calls += 1
        if calls == batch_size:
            bodies.append(request.SerializeToString())
            request, calls = ExportTraceServiceRequest(), 0
            scope = request.resource_spans.add().scope_spans.add()
    if calls:
        bodies.append(request.SerializeToString())
    return bodies
