"""OTLP/HTTP on the wire (the OpenTelemetry protocol specification, "OTLP/HTTP"): an
`ExportTraceServiceRequest` in, its `ExportTraceServiceResponse` or a `google.rpc.Status`
out, in the encoding the request came in — binary protobuf or OTLP/JSON.

The messages are the official generated ones (`opentelemetry-proto`); JSON goes through
protobuf's own `json_format`, after turning OTLP/JSON's hex span and trace ids into the
base64 that the standard protobuf JSON mapping expects. Compressed bodies are inflated
with the body limit applied to what they inflate to, so a small zip bomb is a 413, not
a process's memory.
"""

import base64
import binascii
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

PROTOBUF, JSON = "application/x-protobuf", "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)


class OtlpBodyError(ValueError):
    """The request cannot be read; answered with a Status and this HTTP status."""

    status = 400


class BodyTooLarge(OtlpBodyError):
    status = 413


class UnsupportedEncoding(OtlpBodyError):
    status = 415


def media_type(content_type: str | None) -> str | None:
    """PROTOBUF or JSON for a request's Content-Type; None for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media if media in MEDIA_TYPES else None


def request_decode(*, body: bytes, media: str, content_encoding: str | None, max_bytes: int) -> ExportTraceServiceRequest:
    """The export request in a body; raises OtlpBodyError (or a subclass) saying what is wrong."""
    raw = _inflate(body, content_encoding, max_bytes)
    if media == JSON:
        return _request_from_json(raw)
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except DecodeError:
        raise OtlpBodyError("the body is not a protobuf ExportTraceServiceRequest") from None


def _inflate(body, content_encoding, limit):
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", "none", ""):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding[:40]!r}: send gzip, deflate or none")
    inflated, rest = bytearray(), body
    while rest:  # a gzip body may hold several members, one after the other
        # 32 + MAX_WBITS reads a gzip or a zlib header, whichever the sender wrote.
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        try:
            inflated += inflater.decompress(rest, limit + 1 - len(inflated))
        except zlib.error as exc:
            raise OtlpBodyError(f"the body is not valid {encoding} data ({exc})") from None
        if len(inflated) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(f"the body inflates to more than the limit of {limit} bytes")
        if not inflater.eof:
            raise OtlpBodyError(f"the {encoding} body is truncated")
        rest = inflater.unused_data
    return bytes(inflated)


# OTLP/JSON writes these bytes fields as hex; protobuf's JSON mapping reads base64.
_HEX_IDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def _request_from_json(raw):
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise OtlpBodyError(f"the body is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise OtlpBodyError("the body must be a JSON object (an ExportTraceServiceRequest)")
    for span in _json_spans(data):
        _hex_ids_to_base64(span)
        for link in _json_list(span, "links"):
            _hex_ids_to_base64(link)
    try:
        # OTLP/JSON receivers must ignore fields they do not know (the specification).
        return json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpBodyError(f"the body is not an OTLP/JSON ExportTraceServiceRequest: {str(exc)[:300]}") from None


def _json_list(node, key):
    value = node.get(key) if isinstance(node, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _json_spans(data):
    for resource_spans in _json_list(data, "resourceSpans"):
        for scope_spans in _json_list(resource_spans, "scopeSpans"):
            yield from _json_list(scope_spans, "spans")


def _hex_ids_to_base64(node):
    """Hex ids of the right length become base64; anything else is left for the parser
    (already base64, as protobuf's standard mapping writes them, or wrong: a 400)."""
    for key, size in _HEX_IDS.items():
        value = node.get(key)
        if isinstance(value, str) and len(value) == 2 * size:
            try:
                node[key] = base64.b64encode(binascii.unhexlify(value)).decode()
            except (binascii.Error, ValueError):
                pass


def response_encode(*, media: str, rejected: int, message: str) -> bytes:
    """An ExportTraceServiceResponse; `partial_success` only when something is to be said."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return _encode(response, media)


# The Status code is informational (clients go by the HTTP status): the nearest gRPC one.
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.INVALID_ARGUMENT, 415: code_pb2.INVALID_ARGUMENT, 429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def status_encode(*, media: str, http_status: int, message: str) -> bytes:
    """The body of every OTLP/HTTP failure: a google.rpc.Status."""
    return _encode(status_pb2.Status(code=_GRPC_CODES.get(http_status, code_pb2.UNKNOWN), message=message), media)


def _encode(message, media):
    if media == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


@dataclass(frozen=True)
class Span:
    """One span as the mapping reads it: ids as hex, attribute values as plain Python
    (the span's own over its resource's), times in Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict
    start_ns: int
    end_ns: int
    error: bool  # the span's status is ERROR
    status_message: str


def request_spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    attributes={**resource, **_attributes(span.attributes)},
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    error=span.status.code == Status.STATUS_CODE_ERROR,
                    status_message=span.status.message,
                )


def request_span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def _attributes(key_values):
    return {item.key: _value(item.value) for item in key_values}


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(any_value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode()  # as OTLP/JSON writes bytes
    return getattr(any_value, kind)
