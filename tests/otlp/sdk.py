"""The real OpenTelemetry SDK as the sender: a gateway's tracer makes the spans, and the
SDK's own encoder (or its OTLP/HTTP exporter) puts them on the wire."""

import base64
import gzip
import json

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from audit.otlp import codec

URL = "/api/v1/otlp/v1/traces"
DENY = {
    "gen_ai.security.decision.type": "deny",
    "gen_ai.security.policy.id": "r-7",
    "gen_ai.security.policy.name": "github-guardrails",
    "gen_ai.security.decision.reason": "delete_* is denied for everyone",
}


class Gateway:
    """Makes spans as an OpenTelemetry-instrumented MCP gateway would."""

    def __init__(self):
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "mcp-gateway"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("mcp.gateway")

    def call(self, tool="list_issues", *, guardrail=None, guardrail_ends_last=False, error=None, **attributes):
        """An MCP tools/call span, with an apply_guardrail child span carrying `guardrail`
        attributes if given (ending before its call, as a guardrail checked first does,
        or after it). Returns (call span, guardrail span or None)."""
        attributes = {
            "mcp.method.name": "tools/call",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.arguments": json.dumps({"repo": "acme/igris"}),
            "igris.slug": "github-prod",
            "igris.user": "alice@company.com",
            **attributes,
        }
        call = self.tracer.start_span(f"tools/call {tool}", kind=SpanKind.SERVER, attributes=attributes)
        child = None
        if guardrail is not None:
            child = self.tracer.start_span(
                "apply_guardrail github-guardrails",
                context=trace.set_span_in_context(call),
                attributes={"gen_ai.operation.name": "apply_guardrail", **guardrail},
            )
            if not guardrail_ends_last:
                child.end()
        if error:
            call.set_status(Status(StatusCode.ERROR, error))
        call.end()
        if child is not None and guardrail_ends_last:
            child.end()
        return call, child

    def other(self, name="GET /health"):
        span = self.tracer.start_span(name)
        span.end()
        return span

    def shutdown(self):
        self.provider.shutdown()


def event_id(span) -> str:
    return f"otel-{span.context.span_id:016x}"


def protobuf_body(spans) -> bytes:
    return encode_spans(spans).SerializeToString()


def json_body(spans) -> bytes:
    """OTLP/JSON as the specification writes it: protobuf's JSON mapping with hex ids."""
    data = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def post_spans(client, spans, *, key, media=codec.PROTOBUF, gzipped=False):
    body = json_body(spans) if media == codec.JSON else protobuf_body(spans)
    return post_body(client, body, key=key, media=media, encoding="gzip" if gzipped else None,
                     compress=gzip.compress if gzipped else None)


def post_body(client, body, *, key, media=codec.PROTOBUF, encoding=None, compress=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    return client.generic("POST", URL, data=compress(body) if compress else body, content_type=media, **headers)


def exporter(base_url, key, **options) -> OTLPSpanExporter:
    """The SDK's OTLP/HTTP protobuf exporter, pointed at a running Lens."""
    return OTLPSpanExporter(endpoint=f"{base_url}{URL}", headers={"Authorization": f"Bearer {key}"}, timeout=10, **options)
